"""The round engine with per-miner payloads and batched verification: each miner's payload names
its hotkey, answers are reduced on arrival, and each task is verified once with every miner's claim."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from subnet.util import aio
from subnet.challenges.base import Claim, Task, Verdict
from subnet.protocol import FaultKind, Submission
from subnet.twins.standin import EchoChallenge, StandInRuntime
from subnet.validator.round import RoundEngine, RoundLimits


class RecordingChallenge(EchoChallenge):
    """Echo, with the hotkey in the payload (the stand-in echoes `seed`) and verify calls recorded."""

    verify_in_thread = True

    def __init__(self, fail_verify: bool = False) -> None:
        self.verify_calls: list[tuple[int, list[str]]] = []
        self.fail_verify = fail_verify

    def payload(self, task: Task, hotkey: str) -> Mapping[str, Any]:
        return {"seed": f"{task.seed}:{hotkey}"}

    def receive(self, task: Task, hotkey: str, answer: Any) -> Claim:
        if answer == {"seed": f"{task.seed}:{hotkey}"}:
            return Claim(hotkey, data=answer["seed"])
        return Claim(hotkey, Verdict.reject(FaultKind.WRONG_ANSWER, "not my payload"))

    def verify(self, task: Task, claims: Sequence[Claim]) -> list[Verdict]:
        self.verify_calls.append((task.index, [c.hotkey for c in claims]))
        if self.fail_verify:
            raise RuntimeError("verifier bug")
        return [c.verdict or Verdict.accept() for c in claims]


def subs(count: int) -> list[Submission]:
    return [Submission(uid, f"hk{uid}", f"m{uid}", f"sha256:{uid:064x}") for uid in range(count)]


def test_each_task_is_verified_once_with_every_miners_claim():
    challenge = RecordingChallenge()
    progress = []
    engine = RoundEngine(StandInRuntime(latency_s=0.002), challenge, RoundLimits(concurrency=4, call_timeout=5))
    outcomes = aio.run(engine.run(subs(5), challenge.make_tasks(b"s", 3), lambda s, o: progress.append((s.uid, o))))
    assert all(t.verified and t.latency_ms is not None for o in outcomes for t in o.tasks)
    assert sorted(i for i, _ in challenge.verify_calls) == [0, 1, 2]
    assert all(sorted(hotkeys) == [f"hk{u}" for u in range(5)] for _, hotkeys in challenge.verify_calls)
    assert len(progress) == 15 and all(o.verified for _, o in progress)


def test_a_verifier_crash_is_the_validators_fault_not_the_miners():
    challenge = RecordingChallenge(fail_verify=True)
    engine = RoundEngine(StandInRuntime(latency_s=0.001), challenge, RoundLimits(call_timeout=5))
    outcomes = aio.run(engine.run(subs(2), challenge.make_tasks(b"s", 2)))
    tasks = [t for o in outcomes for t in o.tasks]
    assert all(t.infra and not t.verified and t.fault is None for t in tasks)
    assert all("validator error: RuntimeError: verifier bug" in t.reason for t in tasks)
    assert all(o.counted == [] for o in outcomes)
