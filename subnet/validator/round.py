"""The round engine: every miner's Actor on every task, with bounded concurrency and deadlines.

Phases: images are pulled, all at once, where the runtime pulls them (Docker: `prepare`); a pull
not done within `pull_wait` is infrastructure for that miner and holds nobody after. Every Actor
is provisioned (at most `start_concurrency` starting at once), then all tasks run, then
everything is torn down; so no miner's latency is measured while another is still booting on
shared hardware. Bounds: at most
`concurrency` calls in flight overall and `per_miner` per miner (taken in that order, so a miner
waiting on its own limit holds no global slot); a validator-side deadline on every call; and a
breaker that fails a miner's remaining tasks after `breaker_faults` consecutive timeouts or
crashes, so a dead Actor costs one deadline, not one per task. Latency is the validator's own
clock around the call. Each answer is reduced to a small claim on arrival (`Challenge.receive`);
once every miner is done, each task's claims are verified together in one pass off the event loop
(`Challenge.verify`), so work shared by all miners of a task is done once.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Callable, Sequence

from subnet.challenges.base import Challenge, Claim, Task, Verdict
from subnet.protocol import EVALUATE_METHOD, FaultKind, InfraFault, MinerFault, Submission
from subnet.util.text import one_line
from subnet.runtime.base import ActorSession, Runtime

if TYPE_CHECKING:
    from subnet.validator.llm import LlmRound

log = logging.getLogger(__name__)

_BREAKER_KINDS = {FaultKind.TIMEOUT, FaultKind.UNREACHABLE}


@dataclass(frozen=True)
class RoundLimits:
    concurrency: int = 8
    per_miner: int = 4
    start_concurrency: int = 8
    call_timeout: float = 30.0
    breaker_faults: int = 2
    pull_wait: float = 120.0  # longest the round waits for image pulls (runtimes that pull)


@dataclass(frozen=True)
class TaskOutcome:
    task_index: int
    verified: bool = False
    fault: FaultKind | None = None
    reason: str = ""
    latency_ms: float | None = None
    infra: bool = False  # not the miner's fault: excluded from its metrics
    llm_usd: float = 0.0  # LLM dollars the validator's gateway metered for this task


@dataclass
class MinerOutcome:
    submission: Submission
    tasks: list[TaskOutcome] = field(default_factory=list)
    gpu_type: str | None = None  # the box the Actor ran on, where the runtime knows it
    hourly_price: float | None = None

    @property
    def counted(self) -> list[TaskOutcome]:
        return [t for t in self.tasks if not t.infra]

    @property
    def verified_latencies_ms(self) -> list[float]:
        return [t.latency_ms for t in self.tasks if t.verified and t.latency_ms is not None]

    @property
    def llm_usd(self) -> float:
        """LLM dollars of every task run this round, counted or not (the validator paid them all)."""
        return sum(t.llm_usd for t in self.tasks)

    @property
    def faults(self) -> dict[str, int]:
        counts = collections.Counter(t.fault.value for t in self.counted if t.fault)
        infra = sum(1 for t in self.tasks if t.infra)
        if infra:
            counts["infra"] = infra
        return dict(sorted(counts.items()))

    @property
    def first_reason(self) -> str:
        return next((t.reason for t in self.tasks if t.reason), "")

    @property
    def reasons(self) -> dict[str, str]:
        """The first reason given for each fault kind (infrastructure as `infra`)."""
        found: dict[str, str] = {}
        for t in self.tasks:
            kind = "infra" if t.infra else t.fault.value if t.fault else None
            if kind and t.reason and kind not in found:
                found[kind] = t.reason
        return dict(sorted(found.items()))


ProgressFn = Callable[[Submission, TaskOutcome], None]


@dataclass(frozen=True)
class _Answered:
    """An answered task waiting for its task's batched verification."""

    task_index: int
    claim: Claim
    latency_ms: float
    llm_usd: float = 0.0


class _Breaker:
    """Trips after `limit` consecutive deadline/crash faults; then remaining tasks fail fast."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.streak = 0
        self.tripped: MinerFault | None = None

    def record(self, fault: MinerFault | None) -> None:
        if fault is None or fault.kind not in _BREAKER_KINDS:
            self.streak = 0
            return
        self.streak += 1
        if self.streak >= self.limit and self.tripped is None:
            self.tripped = fault


class RoundEngine:
    def __init__(self, runtime: Runtime, challenge: Challenge, limits: RoundLimits, llm: "LlmRound | None" = None) -> None:
        self.runtime = runtime
        self.challenge = challenge
        self.limits = limits
        self.llm = llm  # an LLM challenge's credentials and per-task meter (subnet.validator.llm)

    async def run(
        self, submissions: Sequence[Submission], tasks: Sequence[Task], progress: ProgressFn | None = None
    ) -> list[MinerOutcome]:
        self._calls = asyncio.Semaphore(self.limits.concurrency)
        # An Actor on a box of its own (Basilica) waits minutes for a pull that holds nothing here:
        # they all start at once, or a round of many miners would wait for its starts in waves.
        dedicated = getattr(self.runtime, "dedicated_hardware", False)
        self._starts = asyncio.Semaphore(max(self.limits.start_concurrency, len(submissions) if dedicated else 0))
        self._pending_starts = len(submissions)
        self._all_started = asyncio.Event()
        self._pull_window_over = asyncio.Event()
        if not submissions:
            return []
        self._progress = progress or (lambda _s, _o: None)
        window = asyncio.get_running_loop().call_later(self.limits.pull_wait, self._pull_window_over.set)
        try:
            outcomes = list(await asyncio.gather(*(self._run_miner(s, tasks) for s in submissions)))
        finally:
            window.cancel()
        for task in tasks:
            await self._verify_task(task, outcomes)
        return outcomes

    async def _verify_task(self, task: Task, outcomes: list[MinerOutcome]) -> None:
        """Judge every miner's claim on `task` in one call and replace them by outcomes."""
        slots = [(o, i) for o in outcomes for i, t in enumerate(o.tasks)
                 if isinstance(t, _Answered) and t.task_index == task.index]
        if not slots:
            return
        claims = [o.tasks[i].claim for o, i in slots]
        try:
            if self.challenge.verify_in_thread:
                verdicts = await asyncio.to_thread(self.challenge.verify, task, claims)
            else:
                verdicts = self.challenge.verify(task, claims)
        except Exception as exc:  # noqa: BLE001 - a verifier bug is the validator's, not the miners'
            log.exception("verification of task %d failed", task.index)
            verdicts = [Verdict(False, None, f"validator error: {type(exc).__name__}: {one_line(str(exc))}")] * len(claims)
        for (outcome, i), verdict in zip(slots, verdicts):
            answered = outcome.tasks[i]
            result = TaskOutcome(task.index, verified=verdict.ok, fault=verdict.fault, reason=verdict.reason,
                                 latency_ms=answered.latency_ms, infra=not verdict.ok and verdict.fault is None,
                                 llm_usd=answered.llm_usd)
            outcome.tasks[i] = result
            self._progress(outcome.submission, result)

    async def _run_miner(self, sub: Submission, tasks: Sequence[Task]) -> MinerOutcome:
        done: dict[int, TaskOutcome | _Answered] = {}  # answered ones become outcomes in run()
        fallback: TaskOutcome | None = None
        outcome = MinerOutcome(sub)
        try:
            async with contextlib.AsyncExitStack() as stack:
                try:
                    await self._prepare(sub)
                    async with self._starts:
                        actor = await stack.enter_async_context(self._open(sub))
                finally:
                    self._started_one()
                outcome.gpu_type = getattr(actor, "gpu_type", None)
                outcome.hourly_price = getattr(actor, "hourly_price", None)
                # Nobody's clock runs while another Actor is still booting on shared hardware. A
                # runtime whose Actors each have their own machine (Basilica) skips the wait: there
                # it would only pay for idle GPUs.
                if not getattr(self.runtime, "dedicated_hardware", False):
                    await self._all_started.wait()
                await self._run_tasks(sub, actor, tasks, done)
        except MinerFault as fault:
            fallback = TaskOutcome(-1, fault=fault.kind, reason=fault.detail)
        except InfraFault as exc:
            fallback = TaskOutcome(-1, reason=f"infrastructure: {one_line(str(exc))}", infra=True)
        except Exception as exc:  # noqa: BLE001 - a runtime bug must not sink the round or the miner
            log.warning("runtime failed for %s: %s: %s", sub.name, type(exc).__name__, one_line(str(exc)))
            log.debug("runtime failure of %s", sub.name, exc_info=exc)
            fallback = TaskOutcome(-1, reason=f"validator error: {type(exc).__name__}: {one_line(str(exc))}", infra=True)
        for task in tasks:
            result = done.get(task.index)
            if result is None:
                fallback = fallback or TaskOutcome(-1, reason="not run", infra=True)
                result = TaskOutcome(task.index, fault=fallback.fault, reason=fallback.reason, infra=fallback.infra)
                self._progress(sub, result)
            outcome.tasks.append(result)
        return outcome

    async def _prepare(self, sub: Submission) -> None:
        """A runtime that pulls images (Docker) pulls them here, all at once and before any start
        slot is taken; a pull not done when the pull window closes is infrastructure for this
        round, so a slow registry holds nobody past `pull_wait` (the pull itself goes on)."""
        prepare = getattr(self.runtime, "prepare", None)
        if prepare is None:
            return
        pulling = asyncio.ensure_future(prepare(sub))
        window = asyncio.ensure_future(self._pull_window_over.wait())
        finished = False
        try:
            await asyncio.wait({pulling, window}, return_when=asyncio.FIRST_COMPLETED)
            finished = pulling.done()
        finally:
            window.cancel()
            if not pulling.done():
                pulling.cancel()  # the wait only: the runtime's pull goes on
        if finished:
            return pulling.result()
        raise InfraFault(f"image pull not finished within the round's pull window of {self.limits.pull_wait:g}s; "
                         "it goes on in the background for a later round")

    def _open(self, sub: Submission):
        """The Actor's context; an LLM round hands it exactly its own gateway credentials."""
        if self.llm is None:
            return self.runtime.open(sub)
        return self.runtime.open(sub, environment=self.llm.environment(sub.uid, sub.hotkey))

    def _started_one(self) -> None:
        self._pending_starts -= 1
        if self._pending_starts <= 0:
            self._all_started.set()

    async def _run_tasks(self, sub: Submission, actor: ActorSession, tasks: Sequence[Task], done: dict) -> None:
        per_miner = asyncio.Semaphore(self.limits.per_miner)
        breaker = _Breaker(self.limits.breaker_faults)

        async def one(task: Task) -> None:
            try:
                result = await self._run_task(sub, actor, task, per_miner, breaker)
            except Exception as exc:  # noqa: BLE001 - a validator bug costs one task, never the round
                why = f"validator error: {type(exc).__name__}: {one_line(str(exc))}"
                log.warning("task %d of %s: %s", task.index, sub.name, why)
                log.debug("task %d of %s failed", task.index, sub.name, exc_info=exc)
                result = TaskOutcome(task.index, reason=why, infra=True)
            done[task.index] = result
            if isinstance(result, TaskOutcome):  # answered tasks report once verified
                self._progress(sub, result)

        await asyncio.gather(*(one(t) for t in tasks))

    async def _run_task(
        self, sub: Submission, actor: ActorSession, task: Task, per_miner: asyncio.Semaphore, breaker: _Breaker
    ) -> TaskOutcome | _Answered:
        async with per_miner:
            if breaker.tripped:
                return _failed(task, breaker.tripped, "after repeated failures: ")
            payload = self.challenge.payload(task, sub.hotkey)
            kwargs = {"task_id": task.index, **payload, "timeout": self.limits.call_timeout}
            if self.llm is not None and self.llm.model:
                kwargs["model"] = self.llm.model  # the one model the gateway lets this round use first
            async with self._calls:
                metered = await self._metered_call(sub, actor, task.index, kwargs)
            answer, latency_ms, llm_usd = metered
            if isinstance(answer, MinerFault):
                breaker.record(answer)
                return replace(_failed(task, answer), llm_usd=llm_usd)
            if isinstance(answer, InfraFault):
                return TaskOutcome(task.index, reason=f"infrastructure: {one_line(str(answer))}", infra=True,
                                   llm_usd=llm_usd)
            breaker.record(None)
        # Cheap (shape checks, k sampled numbers kept): the full answer is not held until verification.
        return _Answered(task.index, self.challenge.receive(task, sub.hotkey, answer), latency_ms, llm_usd)

    async def _metered_call(self, sub: Submission, actor: ActorSession, index: int, kwargs: dict) -> tuple:
        """(answer or the fault, latency in ms, LLM dollars): in an LLM round the gateway meters the
        miner's calls to this task from just before the call until it is settled after it."""
        if self.llm is not None:
            self.llm.begin(sub.uid, index)
        started = time.perf_counter()
        try:
            answer = await actor.call(EVALUATE_METHOD, kwargs, self.limits.call_timeout)
        except (MinerFault, InfraFault) as fault:
            answer = fault
        latency_ms = (time.perf_counter() - started) * 1000.0
        llm_usd = await self.llm.end(sub.uid, index) if self.llm is not None else 0.0
        return answer, latency_ms, llm_usd


def _failed(task: Task, fault: MinerFault, prefix: str = "") -> TaskOutcome:
    return TaskOutcome(task.index, fault=fault.kind, reason=prefix + fault.detail)
