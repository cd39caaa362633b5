"""The challenge plugin protocol.

Tasks are derived from a round seed the miners cannot predict; `verify` runs after the answer has
arrived and may draw its own fresh randomness (which rows to check), so an Actor cannot know what
will be checked. `verify` is pure CPU work with no I/O; the round engine runs it off the event loop.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol

from subnet.protocol import FaultKind


@dataclass(frozen=True)
class Task:
    index: int
    seed: int
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    fault: FaultKind | None = None
    reason: str = ""

    @classmethod
    def accept(cls) -> "Verdict":
        return cls(True)

    @classmethod
    def reject(cls, fault: FaultKind, reason: str) -> "Verdict":
        return cls(False, fault, reason)


class Challenge(Protocol):
    name: str
    version: int
    # True when `verify` costs real CPU (numpy work): the engine then runs it in a worker
    # thread; a trivial check runs inline, where a thread hop would cost more than the check.
    verify_in_thread: bool

    def make_tasks(self, round_seed: bytes, count: int) -> list[Task]: ...

    def verify(self, task: Task, answer: Any) -> Verdict: ...


def task_seed(round_seed: bytes, index: int) -> int:
    """First 8 bytes of sha256(round_seed || index) as an unsigned integer (DESIGN §3.3)."""
    digest = hashlib.sha256(round_seed + index.to_bytes(8, "big")).digest()
    return int.from_bytes(digest[:8], "big")
