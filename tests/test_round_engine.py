"""The round engine's bounds, phases and fault accounting, with in-process stand-in Actors."""

from __future__ import annotations

import asyncio
import contextlib

from subnet.util import aio
from subnet.protocol import FaultKind, InfraFault, MinerFault, Submission
from subnet.twins.standin import EchoChallenge, StandInRuntime
from subnet.validator.round import RoundEngine, RoundLimits


def subs(count: int) -> list[Submission]:
    return [Submission(uid, f"hk{uid}", f"m{uid}", f"sha256:{uid:064x}") for uid in range(count)]


def run(engine: RoundEngine, submissions, tasks=8):
    return aio.run(engine.run(submissions, EchoChallenge().make_tasks(b"s", tasks)))


def test_global_and_per_miner_limits_hold_and_all_tasks_verify():
    runtime = StandInRuntime(latency_s=0.005)
    limits = RoundLimits(concurrency=6, per_miner=2, call_timeout=5)
    outcomes = run(RoundEngine(runtime, EchoChallenge(), limits), subs(10), tasks=8)
    assert runtime.calls == 80
    assert runtime.max_in_flight == 6
    assert max(runtime.max_per_miner.values()) == 2
    assert all(t.verified for o in outcomes for t in o.tasks)
    assert runtime.open_now == 0 and runtime.closed == 10


def test_a_hanging_miner_costs_one_deadline_and_only_itself():
    runtime = StandInRuntime(latency_s=0.001, hang_for=frozenset({"m1"}))
    limits = RoundLimits(concurrency=8, per_miner=2, call_timeout=0.3, breaker_faults=2)
    outcomes = run(RoundEngine(runtime, EchoChallenge(), limits), subs(3), tasks=16)
    by_uid = {o.submission.uid: o for o in outcomes}
    assert by_uid[1].faults == {"timeout": 16}
    assert all(t.verified for uid in (0, 2) for t in by_uid[uid].tasks)
    # 2 calls time out together and trip the breaker; the other 14 fail fast without a call.
    assert runtime.calls == 16 + 16 + 2


class _FailingRuntime:
    """Start failures of each kind, to check they map to the right accounting."""

    name = "failing"

    def __init__(self, errors):
        self.errors = errors

    @contextlib.asynccontextmanager
    async def open(self, submission):
        error = self.errors[submission.uid]
        if error:
            raise error
        async with StandInRuntime(0.001).open(submission) as session:
            yield session


def test_start_failures_count_for_miners_but_infra_does_not():
    runtime = _FailingRuntime(
        {
            0: None,
            1: MinerFault(FaultKind.START_FAILED, "exited with code 1"),
            2: InfraFault("basilica is down"),
            3: RuntimeError("a bug in a runtime"),
        }
    )
    outcomes = {o.submission.uid: o for o in run(RoundEngine(runtime, EchoChallenge(), RoundLimits()), subs(4), 4)}
    assert all(t.verified for t in outcomes[0].tasks)
    assert outcomes[1].faults == {"start_failed": 4} and len(outcomes[1].counted) == 4
    assert outcomes[2].faults == {"infra": 4} and outcomes[2].counted == []
    assert outcomes[3].faults == {"infra": 4} and "RuntimeError" in outcomes[3].first_reason


def test_tasks_wait_until_every_actor_has_started():
    order: list[str] = []

    class SlowStart(StandInRuntime):
        @contextlib.asynccontextmanager
        async def open(self, submission):
            await asyncio.sleep(0.2 if submission.uid == 0 else 0.0)
            order.append(f"started {submission.uid}")
            async with super().open(submission) as session:
                yield _Recording(session, order)

    class _Recording:
        def __init__(self, inner, log):
            self.inner, self.log = inner, log

        async def call(self, method, kwargs, timeout):
            self.log.append("call")
            return await self.inner.call(method, kwargs, timeout)

    run(RoundEngine(SlowStart(0.001), EchoChallenge(), RoundLimits()), subs(3), tasks=2)
    assert order.index("started 0") < order.index("call")
    assert order.count("call") == 6


def test_empty_round():
    assert run(RoundEngine(StandInRuntime(), EchoChallenge(), RoundLimits()), [], 4) == []
