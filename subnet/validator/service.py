"""One validator round end to end: commitments → submissions → round → store → weights on chain.

`subnet dry-run` and `subnet validator run` both go through `Validator.run_round`; they differ
only in the chain adapter, the runtime and how a committed image is resolved to something the
runtime can start.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Protocol, Sequence

from subnet.validator import scoring
from subnet.chain.base import Chain, RawCommitment, WeightsReceipt
from subnet.chain.commitments import Copy, Rejection, scan_commitments
from subnet.state.first_seen import FirstSeen
from subnet.chain.preflight import check_ready
from subnet.challenges.base import Challenge, Task
from subnet.protocol.commitment import ImageRef
from subnet.config import Settings
from subnet.protocol import FaultKind, MinerFault, Submission
from subnet.util.text import one_line
from subnet.state.store import Evaluation, Store, TaskRecord
from subnet.validator.cache import challenge_key, split_due
from subnet.validator.llm import LlmService, LlmUnavailable, needs_llm
from subnet.validator.payout import Payouts
from subnet.validator.report import MinerReport, RoundReport
from subnet.validator.results import ResultWriter
from subnet.validator.round import MinerOutcome, ProgressFn, RoundEngine, RoundLimits, TaskOutcome
from subnet.util.aio import in_thread

log = logging.getLogger(__name__)

Resolver = Callable[[ImageRef], str]  # image ref → what the runtime starts (env dir, image ref)


class RoundObserver(Protocol):
    """Told when a round starts and ends (metrics)."""

    def round_started(self, round_id: int) -> None: ...

    def round_finished(self, report: RoundReport, fresh: Sequence[MinerOutcome], receipt: WeightsReceipt | None) -> None: ...

    def round_aborted(self) -> None: ...


class Unresolvable(Exception):
    """A well-formed reference this validator will not run (e.g. a local-only image on chain)."""

    def __init__(self, message: str, kind: str = "unresolvable") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class RoundPlan:
    """Who runs this round, who copied whom, and which commitments were ignored and why."""

    submissions: list[Submission] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    # committing hotkey → why its image cannot run this round (found out from the registry before
    # any pull). Per hotkey, not per digest: a thief's registry must not fault the author's image.
    faults: dict[str, Exception] = field(default_factory=dict)


def round_seed(secret: bytes, block: int) -> bytes:
    """Tasks depend on the validator's secret and the block: unpredictable to miners."""
    return hashlib.sha256(secret + block.to_bytes(8, "big")).digest()


def numbered_seed(seed: bytes, round_number: int) -> bytes:
    """Mix in the round's number (kept in the state, never reused), so no two rounds send the
    same tasks even when the block did not advance."""
    return hashlib.sha256(seed + round_number.to_bytes(8, "big")).digest()


def limits_from(settings: Settings) -> RoundLimits:
    return RoundLimits(
        concurrency=settings.concurrency,
        per_miner=settings.per_miner,
        start_concurrency=settings.start_concurrency,
        call_timeout=settings.call_timeout,
        breaker_faults=settings.breaker_faults,
        pull_wait=settings.pull_wait,
    )


def plan_round(
    raws: Sequence[RawCommitment],
    resolve: Resolver,
    first_seen: FirstSeen | None = None,
    labels: dict[str, str] | None = None,
    image_owners: dict[str, str | None] | None = None,
) -> RoundPlan:
    """Parse every commitment strictly, settle digest ownership, resolve what to run."""
    scan = scan_commitments(raws, first_seen, image_owners)
    plan = RoundPlan(copies=scan.copies, rejected=list(scan.rejected))
    for entry in scan.accepted:
        try:
            source = resolve(entry.image)
        except Unresolvable as exc:
            plan.rejected.append(Rejection(entry.hotkey, entry.uid, str(exc), exc.kind))
            continue
        label = (labels or {}).get(entry.image.digest, str(entry.image))
        plan.submissions.append(Submission(entry.uid, entry.hotkey, source, entry.image.digest, label))
    for rejection in plan.rejected:
        log.info("ignored commitment of %s (uid %s): %s", rejection.hotkey, rejection.uid, rejection.reason)
    return plan


class Validator:
    def __init__(self, chain: Chain, runtime, challenge: Challenge, settings: Settings, store: Store,
                 observer: RoundObserver | None = None, llm: LlmService | None = None) -> None:
        self.llm = llm  # the gateway an LLM challenge's Actors call (subnet.validator.llm)
        self.chain = chain
        self.runtime = runtime
        self.challenge = challenge
        self.settings = settings
        self.store = store
        self.observer = observer
        self.results = ResultWriter(store)  # a failed write is kept and retried, never lost
        self.payouts = Payouts(chain, settings, store, self.results)

    async def run_round(self, plan: RoundPlan, seed: bytes, progress: ProgressFn | None = None) -> RoundReport:
        try:
            return await self._run_round(plan, seed, progress)
        except BaseException:
            if self.observer:
                self.observer.round_aborted()
            raise

    async def _run_round(self, plan: RoundPlan, seed: bytes, progress: ProgressFn | None) -> RoundReport:
        started = time.perf_counter()
        netuid = self.settings.netuid
        # Chain calls are blocking network I/O on a real chain: keep them off the event loop.
        # Standing first: weights the chain would refuse are not worth any compute.
        await asyncio.to_thread(check_ready, self.chain, netuid, self.settings.version_key)
        key = challenge_key(self.challenge)
        runnable = [s for s in plan.submissions if s.hotkey not in plan.faults]
        # State reads and writes wait in threads of their own (`in_thread`): a file locked by another
        # process must not hold the event loop, and with it signal handling.
        split = split_due(runnable, await in_thread(self.store.evaluations, key), time.time(),
                          self.settings.reeval_interval, self.settings.reeval_slice)
        refusal = self._llm_refusal() or await _preflight(self.runtime, split.due)  # only changed images deploy
        if refusal:  # a spending limit: the whole round is skipped, never half-run
            log.warning("%s", refusal)
            return RoundReport(mode=self.runtime.name, challenge=self.challenge.name, tasks_per_miner=0, miners=[],
                               weights={}, weights_set="not set: round skipped", skipped=refusal,
                               wall_s=round(time.perf_counter() - started, 3))
        reveal = await in_thread(self.payouts.confirm_reveal)  # chain reads and a state write
        block = await asyncio.to_thread(self.chain.current_block)
        round_id = await in_thread(self.results.begin_round, self.runtime.name, key, block)
        if self.observer:
            self.observer.round_started(round_id)
        tasks = self.challenge.make_tasks(numbered_seed(seed, round_id), self.settings.tasks)
        fresh = await self._run_engine(split.due, tasks, round_id, progress) if split.due else []
        blocked = [_fault_outcome(s, plan.faults[s.hotkey], tasks) for s in plan.submissions if s.hotkey in plan.faults]
        outcomes, evaluated, reused = await in_thread(self._settle, fresh + blocked, split)
        ran = {o.submission.digest for o in fresh}
        evaluated = [d for d in evaluated if d in ran]  # a blocked image never ran: nothing to cache
        # A registry fault comes before ownership: a copy whose own registry failed shows that
        # fault (and never falls back to the owner's stored result).
        copies = [_fault_outcome(_copy_submission(c), plan.faults[c.hotkey], tasks) if c.hotkey in plan.faults
                  else _copy_outcome(c, tasks) for c in plan.copies]
        await in_thread(self.results.finish_round, round_id, _records(fresh + blocked + copies))
        await in_thread(self.results.record_evaluations, key, round_id, evaluated)
        outcomes += copies

        raw = scoring.scores([_metrics(o) for o in outcomes], self.settings.accuracy_floor)
        neurons = await asyncio.to_thread(self.chain.neurons, netuid)
        smoothed = await in_thread(self.payouts.smooth, outcomes, raw, neurons, round_id)
        payout = await asyncio.to_thread(self.payouts.weights, smoothed, neurons)
        weights = payout.weights
        outcome_line, receipt = await asyncio.to_thread(self.payouts.set_weights, payout)
        if receipt is not None:
            await in_thread(self.results.record, lambda: self.store.record_weights(
                round_id, receipt.block, receipt.status, weights, receipt.reveal_round))
        miners = [
            MinerReport.from_outcome(o, raw[o.submission.uid], weights.get(o.submission.uid, 0.0),
                                     cached=o.submission.uid in reused)
            for o in outcomes
        ]
        report = RoundReport(
            mode=self.runtime.name,
            challenge=self.challenge.name,
            tasks_per_miner=len(tasks),
            miners=sorted(miners, key=lambda m: m.uid),
            weights=weights,
            weights_set=outcome_line,
            rejected=[{"hotkey": r.hotkey, "uid": r.uid, "kind": r.kind, "reason": r.reason} for r in plan.rejected],
            wall_s=round(time.perf_counter() - started, 3),
            round_id=round_id,
            block=block,
            evaluated=len(evaluated),
            cached=len(reused),
            reveal=reveal,
            burn_uid=payout.burn.uid,
            burn_target=payout.burn.who,
            # `--mode cloud`: the round's provider choice (RoundChoice.to_json); {} for other runtimes
            compute=getattr(getattr(self.runtime, "choice", None), "to_json", dict)(),
        )
        summary = {"evaluated": len(fresh), "cached": len(reused), "copies": len(copies),
                   "rejected": len(plan.rejected), "weights_status": outcome_line,
                   "weights_block": receipt.block if receipt else None}
        await in_thread(self.results.record, lambda: self.store.save_summary(round_id, summary, report.to_json()))
        if self.observer:
            self.observer.round_finished(report, fresh, receipt)
        return report

    async def _run_engine(self, due: list[Submission], tasks: list[Task], round_id: int,
                          progress: ProgressFn | None) -> list[MinerOutcome]:
        """Every due miner on every task. An LLM challenge's tasks run one at a time per miner, each
        metered by the gateway, and the round's tokens are refused from the moment it ends."""
        limits = limits_from(self.settings)
        if not needs_llm(self.challenge):
            return await RoundEngine(self.runtime, self.challenge, limits).run(due, tasks, progress)
        llm_round = self.llm.round(self.runtime, round_id)
        try:
            engine = RoundEngine(self.runtime, self.challenge, replace(limits, per_miner=1), llm_round)
            return await engine.run(due, tasks, progress)
        finally:
            await llm_round.close()

    def _llm_refusal(self) -> str | None:
        """Why this validator cannot run its LLM challenge here, in one line (else None)."""
        if not needs_llm(self.challenge):
            return None
        if self.llm is None:
            return f"{self.challenge.name} needs an LLM gateway and this validator has none"
        try:
            self.llm.round(self.runtime, 0)
        except LlmUnavailable as exc:
            return str(exc)
        return None

    def _settle(self, fresh: list[MinerOutcome], split) -> tuple[list[MinerOutcome], list[str], set[int]]:
        """This round's outcomes: fresh results where the miner was actually measured, stored ones
        otherwise. A fresh run lost entirely to infrastructure keeps the previous result (and is
        tried again next round); only measured digests count as evaluated."""
        previous = {sub.digest: ev for sub, ev in split.reused}
        previous.update(self.store.evaluations(challenge_key(self.challenge)))
        outcomes: list[MinerOutcome] = []
        evaluated: list[str] = []
        reused: set[int] = set()
        for outcome in fresh:
            sub = outcome.submission
            if outcome.counted:
                outcomes.append(outcome)
                evaluated.append(sub.digest)
            elif sub.digest in previous:
                outcomes.append(self._stored_outcome(sub, previous[sub.digest]))
                reused.add(sub.uid)
            else:
                outcomes.append(outcome)
        for sub, evaluation in split.reused:
            outcomes.append(self._stored_outcome(sub, evaluation))
            reused.add(sub.uid)
        return outcomes, evaluated, reused

    def _stored_outcome(self, sub: Submission, evaluation: Evaluation) -> MinerOutcome:
        records = [r for r in self.store.results_for_digest(sub.digest, evaluation.round_id) if r.fault != "copy"]
        # The owner's own rows: a copy blocked by its registry that round has rows under the digest too.
        records = [r for r in records if r.hotkey == sub.hotkey] or records
        first = records[0] if records else None
        return MinerOutcome(
            sub,
            [TaskOutcome(r.task_index, verified=r.verified, fault=_fault_kind(r.fault), reason=r.reason,
                         latency_ms=r.latency_ms, infra=r.fault == "infra", llm_usd=r.llm_usd) for r in records],
            gpu_type=first.gpu_type if first else None,
            hourly_price=first.hourly_price if first else None,
        )


def _fault_kind(value: str | None) -> FaultKind | None:
    try:
        return FaultKind(value) if value and value != "infra" else None
    except ValueError:
        return FaultKind.ERROR


async def _preflight(runtime, submissions: Sequence[Submission]) -> str | None:
    """A runtime that spends money (Basilica) may refuse a round before anything starts."""
    check = getattr(runtime, "preflight", None)
    return await check(submissions) if check is not None else None


def _copy_submission(copy: Copy) -> Submission:
    return Submission(copy.uid, copy.hotkey, str(copy.image), copy.image.digest, str(copy.image))


def _copy_outcome(copy: Copy, tasks: Sequence[Task]) -> MinerOutcome:
    """A copied image is not run at all: every task is a `copy` fault, so it earns nothing."""
    return MinerOutcome(_copy_submission(copy), [TaskOutcome(t.index, fault=FaultKind.COPY, reason=copy.reason) for t in tasks])


def _fault_outcome(sub: Submission, fault: Exception, tasks: Sequence[Task]) -> MinerOutcome:
    """An image the registry check stopped: every task carries the miner's fault, or is infra."""
    if isinstance(fault, MinerFault):
        return MinerOutcome(sub, [TaskOutcome(t.index, fault=fault.kind, reason=fault.detail) for t in tasks])
    reason = f"infrastructure: {one_line(str(fault))}"
    return MinerOutcome(sub, [TaskOutcome(t.index, reason=reason, infra=True) for t in tasks])


def _metrics(outcome: MinerOutcome) -> scoring.MinerMetrics:
    sub = outcome.submission
    counted = outcome.counted
    return scoring.MinerMetrics(
        uid=sub.uid,
        hotkey=sub.hotkey,
        digest=sub.digest,
        tasks=len(counted),
        verified=sum(1 for t in counted if t.verified),
        latencies_ms=tuple(outcome.verified_latencies_ms),
        llm_usd=tuple(t.llm_usd for t in outcome.tasks if t.verified and t.latency_ms is not None),
        hourly_price=outcome.hourly_price,
        copy=any(t.fault is FaultKind.COPY for t in counted),
    )


def _records(outcomes: Sequence[MinerOutcome]) -> list[TaskRecord]:
    return [
        TaskRecord(
            digest=o.submission.digest, uid=o.submission.uid, hotkey=o.submission.hotkey,
            task_index=t.task_index, verified=t.verified,
            fault=("infra" if t.infra else (t.fault.value if t.fault else None)),
            reason=t.reason, latency_ms=t.latency_ms, gpu_type=o.gpu_type, hourly_price=o.hourly_price,
            llm_usd=t.llm_usd,
        )
        for o in outcomes
        for t in o.tasks
    ]
