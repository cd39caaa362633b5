"""A dry run's challenges and LLM: which challenge each env declares, and the gateway an LLM env uses.

An env names its challenge with a module constant in env.py, `CHALLENGE = "prose-ledger/1"`, read
here with `ast` (the file is never imported by the validator); without one it is matrix-chain/2.
An LLM env runs through the real gateway (`subnet.gateway`) against the twin upstream
(`subnet.twins.llm_upstream`, whose model answers the built-in challenge deterministically) with no
key; `--llm-upstream URL` points the gateway at a real OpenAI-compatible service instead, its key
read by the gateway's own settings (SUBNET_LLM_API_KEY, CHUTES_API_KEY, .env).
"""

from __future__ import annotations

import ast
import contextlib
import inspect
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

from subnet.challenges.matrix_chain import VERSION as DEFAULT_CHALLENGE
from subnet.validator.challenge_choice import make_challenge
from subnet.util.text import one_line
from subnet.validator.llm import LlmService, LlmUnavailable, make_gateway, needs_llm, runs_remote

TWIN_MODEL = "twin/prose-ledger-oracle"


def env_challenge(env_dir: Path) -> str:
    """The `CHALLENGE = "..."` string constant at env.py's top level, else matrix-chain/2. An
    unreadable or unparsable env.py is left to the runtime, which reports it as the miner's fault."""
    try:
        tree = ast.parse((Path(env_dir) / "env.py").read_text(errors="replace"))
    except (OSError, SyntaxError, ValueError):
        return DEFAULT_CHALLENGE
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "CHALLENGE" for t in node.targets):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value
    return DEFAULT_CHALLENGE


def by_challenge(env_dirs: Sequence[Path]) -> dict[str, list[Path]]:
    """Env folders grouped by the challenge they declare, matrix-chain/2 first, the rest by name."""
    groups: dict[str, list[Path]] = {}
    for env_dir in env_dirs:
        groups.setdefault(env_challenge(env_dir), []).append(env_dir)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0] != DEFAULT_CHALLENGE, kv[0])))


def any_needs_llm(env_dirs: Sequence[Path], n: int, depth: int) -> Any:
    """The first LLM challenge among the envs' (its per-task budget sizes the gateway), or None."""
    for ident in by_challenge(env_dirs):
        challenge = make_challenge(ident, n, depth)
        if needs_llm(challenge):
            return challenge
    return None


@contextlib.asynccontextmanager
async def dry_run_llm(runtime: Any, challenge: Any, work_dir: Path, upstream: str | None) -> AsyncIterator[LlmService]:
    """A started gateway for the dry run (and the twin upstream behind it unless `upstream`)."""
    twin = None
    if upstream is None:
        from subnet.twins.llm_upstream import LlmUpstreamTwin

        twin = LlmUpstreamTwin()
        await _maybe_await(twin.start())
        # No key at all: a key in this shell's environment is never sent to the twin.
        overrides = {"llm_upstream": twin.url, "llm_models": TWIN_MODEL, "llm_api_key": None}
    else:
        overrides = {"llm_upstream": upstream}
    try:
        bind = getattr(runtime, "gateway_bind_host", None)  # Docker: the relay bridge's host address
        try:
            service = make_gateway(work_dir / "llm-usage.sqlite", bind() if bind else None, None,
                                   challenge.llm_task_budget_usd, **overrides)
        except Exception as exc:  # noqa: BLE001 - settings, a relay bridge that cannot be made
            raise LlmUnavailable(f"LLM gateway: {type(exc).__name__}: {one_line(str(exc))}") from None
        await service.start()
        try:
            if runs_remote(runtime) and not service.public_url:
                # The twins run their "remote" Actors on this machine: loopback is their "public" URL.
                service.public_url = service.gateway.local_url.removesuffix("/v1")
            yield service
        finally:
            await service.stop()
    finally:
        if twin is not None:
            await _maybe_await(twin.stop())


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
