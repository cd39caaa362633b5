"""The challenge plugin protocol.

Tasks are derived from a round seed the miners cannot predict; each miner gets its own payload
(`payload(task, hotkey)`). `receive` runs the moment an answer arrives: it checks the answer's shape
and keeps only what verification needs (drawing fresh randomness, e.g. which rows to check, so an
Actor cannot know what will be checked). `verify` then judges every miner's claim of one task in
one pass, so work shared by all miners (a task's matrices) is done once per task. Both are pure CPU
work with no I/O; the round engine runs `verify` off the event loop.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, Sequence

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


@dataclass(frozen=True)
class Claim:
    """What `receive` kept of one miner's answer: a verdict reached already, or data for `verify`."""

    hotkey: str
    verdict: Verdict | None = None
    data: Any = None


class Challenge(Protocol):
    name: str
    version: int
    # True when `verify` costs real CPU (numpy work): the engine then runs it in a worker
    # thread; a trivial check runs inline, where a thread hop would cost more than the check.
    verify_in_thread: bool
    # What the challenge's tasks need of the machine that runs an Actor: a GPU or not (an LLM
    # challenge needs none, so its boxes are the cheapest CPU ones).
    needs_gpu: bool
    # Dollars of LLM calls one task may spend through the validator's gateway; None: the
    # challenge uses no LLM (its Actors get no gateway credentials at all).
    llm_task_budget_usd: float | None

    def make_tasks(self, round_seed: bytes, count: int) -> list[Task]: ...

    def payload(self, task: Task, hotkey: str) -> Mapping[str, Any]: ...

    def receive(self, task: Task, hotkey: str, answer: Any) -> Claim: ...

    def verify(self, task: Task, claims: Sequence[Claim]) -> list[Verdict]:
        """One verdict per claim, in order (a claim holding a verdict keeps it)."""
        ...


def task_seed(round_seed: bytes, index: int) -> int:
    """First 8 bytes of sha256(round_seed || index) as an unsigned integer (DESIGN §3.3)."""
    digest = hashlib.sha256(round_seed + index.to_bytes(8, "big")).digest()
    return int.from_bytes(digest[:8], "big")
