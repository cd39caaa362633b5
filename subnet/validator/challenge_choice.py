"""Which challenge a validator (or one dry-run group of envs) runs, by its `name/version` id."""

from __future__ import annotations

from typing import Any

from subnet.challenges import CHALLENGES
from subnet.challenges.matrix_chain import VERSION as MATRIX_CHAIN, MatrixChain


class UnknownChallenge(Exception):
    """No challenge by that id; the message lists the known ones."""


def challenge_id(challenge_class: Any) -> str:
    """`matrix-chain/2`: the name with its version (a name that already holds one is kept)."""
    name = challenge_class.name
    return name if "/" in name else f"{name}/{challenge_class.version}"


def known_challenges() -> dict[str, Any]:
    return {challenge_id(c): c for c in CHALLENGES.values()}


def make_challenge(ident: str, n: int, depth: int) -> Any:
    """The challenge `ident` names; matrix-chain takes its size from the settings (n, depth)."""
    if ident == MATRIX_CHAIN:
        return MatrixChain(n=n, depth=depth)
    known = known_challenges()
    if ident not in known:
        raise UnknownChallenge(f"unknown challenge {ident!r} (known: {', '.join(sorted(known))})")
    return known[ident]()
