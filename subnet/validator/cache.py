"""Evaluate only what changed (pure).

Results are cached per (image digest, challenge version). A round evaluates:
- every digest with no cached result under the current challenge version (new images, or every
  image after a version bump);
- of the digests whose result is older than the re-evaluation interval, at most `slice_size`,
  oldest first — a rotating slice, so the cost of re-checking unchanged images is spread evenly
  over rounds instead of arriving all at once when they go stale together.
Everything else is scored from its stored result. A round in which nothing is due starts no
Actor at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from subnet.protocol import Submission
from subnet.state.store import Evaluation


@dataclass
class CacheSplit:
    due: list[Submission] = field(default_factory=list)  # run this round
    reused: list[tuple[Submission, Evaluation]] = field(default_factory=list)  # scored from the store


def challenge_key(challenge: Any) -> str:
    """The challenge's version as the cache knows it, with the parameters that change results.

    A `version` that already names the challenge ("matrix-chain/2") is used as is; a bare number
    is joined to the name; no version at all falls back to the name.
    """
    name = str(getattr(challenge, "name", "") or type(challenge).__name__)
    version = getattr(challenge, "version", None)
    if version is None:
        base = name
    elif isinstance(version, str) and "/" in version:
        base = version
    else:
        base = f"{name}/{version}"
    params = [f"{key}={getattr(challenge, key)}" for key in ("n", "depth") if hasattr(challenge, key)]
    return f"{base}[{','.join(params)}]" if params else base


def split_due(
    submissions: Sequence[Submission],
    cached: Mapping[str, Evaluation],
    now: float,
    interval_s: float,
    slice_size: int,
) -> CacheSplit:
    split = CacheSplit()
    stale: list[tuple[Submission, Evaluation]] = []
    for sub in submissions:
        known = cached.get(sub.digest)
        if known is None:
            split.due.append(sub)
        elif now - known.evaluated_at >= interval_s:
            stale.append((sub, known))
        else:
            split.reused.append((sub, known))
    stale.sort(key=lambda pair: (pair[1].evaluated_at, pair[0].uid))
    split.due += [sub for sub, _ in stale[:slice_size]]
    split.reused += stale[slice_size:]
    return split
