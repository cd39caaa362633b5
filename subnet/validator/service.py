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
from dataclasses import dataclass, field
from typing import Callable, Sequence

from subnet import scoring
from subnet.chain.base import Chain, ChainError, Neuron, RawCommitment, WeightsRateLimited
from subnet.chain.commitments import Copy, Rejection, scan_commitments
from subnet.chain.first_seen import FirstSeen
from subnet.challenges.base import Challenge, Task
from subnet.commitment import ImageRef
from subnet.config import Settings
from subnet.protocol import FaultKind, Submission
from subnet.store import Store, TaskRecord
from subnet.validator.report import MinerReport, RoundReport
from subnet.validator.results import ResultWriter
from subnet.validator.round import MinerOutcome, ProgressFn, RoundEngine, RoundLimits, TaskOutcome

log = logging.getLogger(__name__)

Resolver = Callable[[ImageRef], str]  # image ref → what the runtime starts (env dir, image ref)


class Unresolvable(Exception):
    """A well-formed reference this validator will not run (e.g. a local-only image on chain)."""


@dataclass
class RoundPlan:
    """Who runs this round, who copied whom, and which commitments were ignored and why."""

    submissions: list[Submission] = field(default_factory=list)
    copies: list[Copy] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)


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
    )


def plan_round(
    raws: Sequence[RawCommitment],
    resolve: Resolver,
    first_seen: FirstSeen | None = None,
    labels: dict[str, str] | None = None,
) -> RoundPlan:
    """Parse every commitment strictly, settle digest ownership, resolve what to run."""
    scan = scan_commitments(raws, first_seen)
    plan = RoundPlan(copies=scan.copies, rejected=list(scan.rejected))
    for entry in scan.accepted:
        try:
            source = resolve(entry.image)
        except Unresolvable as exc:
            plan.rejected.append(Rejection(entry.hotkey, entry.uid, str(exc), "unresolvable"))
            continue
        label = (labels or {}).get(entry.image.digest, str(entry.image))
        plan.submissions.append(Submission(entry.uid, entry.hotkey, source, entry.image.digest, label))
    for rejection in plan.rejected:
        log.info("ignored commitment of %s (uid %s): %s", rejection.hotkey, rejection.uid, rejection.reason)
    return plan


class Validator:
    def __init__(self, chain: Chain, runtime, challenge: Challenge, settings: Settings, store: Store) -> None:
        self.chain = chain
        self.runtime = runtime
        self.challenge = challenge
        self.settings = settings
        self.store = store
        self.results = ResultWriter(store)  # a failed write is kept and retried, never lost

    async def run_round(self, plan: RoundPlan, seed: bytes, progress: ProgressFn | None = None) -> RoundReport:
        started = time.perf_counter()
        # Chain calls are blocking network I/O on a real chain: keep them off the event loop.
        block = await asyncio.to_thread(self.chain.current_block)
        round_id = self.results.begin_round(self.runtime.name, self.challenge.name, block)
        tasks = self.challenge.make_tasks(numbered_seed(seed, round_id), self.settings.tasks)
        engine = RoundEngine(self.runtime, self.challenge, limits_from(self.settings))
        outcomes = await engine.run(plan.submissions, tasks, progress)
        outcomes += [_copy_outcome(c, tasks) for c in plan.copies]
        self.results.finish_round(round_id, _records(outcomes))

        raw = scoring.scores([_metrics(o) for o in outcomes], self.settings.accuracy_floor)
        neurons = await asyncio.to_thread(self.chain.neurons, self.settings.netuid)
        smoothed = self._smooth(outcomes, raw, neurons, round_id)
        weights = self._weights(smoothed, neurons)
        outcome_line = await asyncio.to_thread(self._set_weights, weights)
        miners = [MinerReport.from_outcome(o, raw[o.submission.uid], weights.get(o.submission.uid, 0.0)) for o in outcomes]
        return RoundReport(
            mode=self.runtime.name,
            challenge=self.challenge.name,
            tasks_per_miner=len(tasks),
            miners=sorted(miners, key=lambda m: m.uid),
            weights=weights,
            weights_set=outcome_line,
            rejected=[{"hotkey": r.hotkey, "uid": r.uid, "kind": r.kind, "reason": r.reason} for r in plan.rejected],
            wall_s=round(time.perf_counter() - started, 3),
        )

    def _smooth(
        self, outcomes: Sequence[MinerOutcome], raw: dict[int, float], neurons: Sequence[Neuron], round_id: int
    ) -> dict[str, float]:
        current = {o.submission.hotkey: raw[o.submission.uid] for o in outcomes if o.counted}
        evaluated = {o.submission.hotkey for o in outcomes}
        # Registered miners with nothing valid committed this round decay toward zero.
        for neuron in neurons:
            if neuron.hotkey not in evaluated and neuron.hotkey != self.chain.hotkey:
                current.setdefault(neuron.hotkey, 0.0)
        smoothed = scoring.smooth(self.results.smoothed_scores(), current, self.settings.ema_alpha)
        self.results.save_smoothed_scores(smoothed, round_id)
        return smoothed

    def _weights(self, smoothed: dict[str, float], neurons: Sequence[Neuron]) -> dict[int, float]:
        registered = {n.hotkey: n.uid for n in neurons}
        by_uid = {uid: smoothed[hk] for hk, uid in registered.items() if hk in smoothed}
        s = self.settings
        return scoring.weights(by_uid, power=s.power, burn_share=s.burn_share, burn_uid=s.burn_uid)

    def _set_weights(self, weights: dict[int, float]) -> str:
        if not weights:
            return "not set: nothing to pay"
        try:
            self.chain.set_weights(self.settings.netuid, weights, self.settings.version_key)
        except WeightsRateLimited as exc:
            return f"not set: rate limited, retry in {exc.retry_in_blocks} blocks"
        except ChainError as exc:
            log.warning("set_weights failed: %s", exc)
            return f"not set: {exc}"
        return f"set for {len(weights)} uids"


def _copy_outcome(copy: Copy, tasks: Sequence[Task]) -> MinerOutcome:
    """A copied image is not run at all: every task is a `copy` fault, so it earns nothing."""
    sub = Submission(copy.uid, copy.hotkey, str(copy.image), copy.image.digest, str(copy.image))
    return MinerOutcome(sub, [TaskOutcome(t.index, fault=FaultKind.COPY, reason=copy.reason) for t in tasks])


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
        )
        for o in outcomes
        for t in o.tasks
    ]
