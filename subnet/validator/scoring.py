"""Pure scoring: per-miner metrics → scores → smoothed scores → weights (DESIGN §3.4).

No I/O here. Only tasks that count are in the metrics: infrastructure failures never reach this
module, so they never cost a miner anything.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Mapping, Sequence


@dataclass(frozen=True)
class MinerMetrics:
    uid: int
    hotkey: str
    digest: str
    tasks: int
    verified: int
    latencies_ms: Sequence[float] = field(default_factory=tuple)  # of verified tasks only
    hourly_price: float | None = None
    copy: bool = False
    # LLM dollars the gateway metered, per verified task (aligned with latencies_ms); empty: none
    llm_usd: Sequence[float] = field(default_factory=tuple)

    @property
    def accuracy(self) -> float:
        return self.verified / self.tasks if self.tasks else 0.0

    @property
    def median_latency_ms(self) -> float | None:
        return statistics.median(self.latencies_ms) if self.latencies_ms else None

    @property
    def cost_per_task(self) -> float | None:
        """Dollars per verified task, the median over them of box price × latency + the task's
        LLM dollars (the gateway's meter). The price is 1 $/h where there is none (local Docker,
        process): without LLM dollars only ratios between miners matter, so that is the old score."""
        if not self.latencies_ms:
            return None
        price = self.hourly_price if self.hourly_price and self.hourly_price > 0 else 1.0
        llm = list(self.llm_usd) or [0.0] * len(self.latencies_ms)
        return statistics.median(ms / 3_600_000.0 * price + usd for ms, usd in zip(self.latencies_ms, llm))


def scores(metrics: Sequence[MinerMetrics], accuracy_floor: float) -> dict[int, float]:
    """accuracy × (best cost per task / own cost per task); 0 below the floor or for copies."""
    eligible = {
        m.uid: m.cost_per_task
        for m in metrics
        if not m.copy and m.tasks and m.accuracy >= accuracy_floor and m.cost_per_task is not None
    }
    costs = [c for c in eligible.values() if c is not None]
    best = min(costs) if costs else None
    result: dict[int, float] = {}
    for m in metrics:
        cost = eligible.get(m.uid)
        if cost is None or best is None:
            result[m.uid] = 0.0
        else:
            result[m.uid] = m.accuracy * (best / cost if cost > 0 else 1.0)
    return result


def smooth(previous: Mapping[str, float], current: Mapping[str, float], alpha: float) -> dict[str, float]:
    """Exponential moving average per hotkey; a hotkey's first score is taken as is."""
    merged = dict(previous)
    for hotkey, value in current.items():
        old = previous.get(hotkey)
        merged[hotkey] = value if old is None else alpha * value + (1 - alpha) * old
    return merged


def weights(
    scores_by_uid: Mapping[int, float],
    power: float = 1.0,
    burn_share: float = 0.0,
    burn_uid: int = 0,
) -> dict[int, float]:
    """Normalised weights. `power` > 1 is winner-take-most; `burn_share` goes to `burn_uid`.

    With nothing to pay and no burn, the result is empty: the caller sets no weights.
    """
    raised = {uid: max(s, 0.0) ** power for uid, s in scores_by_uid.items()}
    total = sum(raised.values())
    if total <= 0:
        return {burn_uid: 1.0} if burn_share > 0 else {}
    paid = 1.0 - burn_share
    result = {uid: paid * v / total for uid, v in raised.items() if v > 0}
    if burn_share > 0:
        result[burn_uid] = result.get(burn_uid, 0.0) + burn_share
    return result
