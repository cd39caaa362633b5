"""What a round produced, per miner, in the shape `subnet dry-run --json` prints."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from subnet.validator.round import MinerOutcome


@dataclass
class MinerReport:
    uid: int
    hotkey: str
    env: str
    digest: str
    tasks: int
    verified: int
    accuracy: float
    latency_ms_p50: float | None
    score: float
    weight: float
    faults: dict[str, int]
    reason: str = ""
    cached: bool = False  # scored from a stored evaluation of this digest, not run this round
    reasons: dict[str, str] = field(default_factory=dict)  # fault kind → the first reason of that kind
    llm_usd: float = 0.0  # LLM dollars the gateway metered for this miner's tasks this round

    @classmethod
    def from_outcome(cls, outcome: MinerOutcome, score: float, weight: float, cached: bool = False) -> "MinerReport":
        sub = outcome.submission
        counted = outcome.counted
        verified = sum(1 for t in counted if t.verified)
        latencies = outcome.verified_latencies_ms
        return cls(
            uid=sub.uid,
            hotkey=sub.hotkey,
            env=sub.name,
            digest=sub.digest,
            tasks=len(counted),
            verified=verified,
            accuracy=round(verified / len(counted), 4) if counted else 0.0,
            latency_ms_p50=round(statistics.median(latencies), 3) if latencies else None,
            score=round(score, 6),
            weight=round(weight, 6),
            faults=outcome.faults,
            reason=outcome.first_reason,
            cached=cached,
            reasons=outcome.reasons,
            llm_usd=round(outcome.llm_usd, 6),
        )


@dataclass
class RoundReport:
    mode: str
    challenge: str
    tasks_per_miner: int
    miners: list[MinerReport]
    weights: dict[int, float]
    weights_set: str = ""  # what happened on chain, one line
    rejected: list[dict[str, Any]] = field(default_factory=list)  # commitments ignored, with reasons
    wall_s: float = 0.0
    round_id: int = 0
    block: int = 0
    evaluated: int = 0  # digests measured this round
    cached: int = 0  # miners scored from stored results
    reveal: str = ""  # commit-reveal subnets: what became of the last committed weights
    skipped: str = ""  # why the whole round was skipped (a spending limit), one line
    burn_uid: int | None = None  # where burned weight went (the subnet owner's uid unless configured)
    burn_target: str = ""  # whose uid that is, e.g. "the subnet owner subnet-owner"
    # `--mode cloud`: the round's provider choice (provider, offer, hourly_usd, cost_per_eval, why,
    # others, left_out: subnet.runtime.market.RoundChoice.to_json); empty for other runtimes.
    compute: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["weights"] = {str(uid): round(w, 6) for uid, w in sorted(self.weights.items())}
        return data
