"""Which GPU box wins across providers: the cheapest allowed per evaluation. Pure: no I/O, no SDK.

Every provider's offer becomes a `BoxOffer` (box price per hour, whole box). What a miner's evaluation
costs is not the hourly price but the hourly price times the time the box is paid for:

    expected cost per evaluation = hourly_usd × (expected start s + expected busy s) / 3600

so a box that is cheap per hour but slow to start can be the dearer one. Start times are learned per
(provider, GPU model) from the validator's own ledger: the median of the last N created→ready times
(`start_s_of`), or a documented prior (`PRIOR_START_S`) when there is no history yet. Where the ledger
row names the machine (`detail["machine_id"]`: a Vast host pulls the image over its own link, so its
start is its own), that machine's own median is used for its offers, the model's for machines not seen.

The policy is the one `GpuPolicy` (allowlist + hourly cap) over both providers; an offer refused by it
is never ranked, so nothing above the cap can be chosen whatever it saves in start time. The GPU name
in an allowlist entry is matched on letters and digits only, case-folded, so `RTX-A4000` (Basilica's
spelling) also allows Vast's `RTX A4000`.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Iterable, Mapping

from subnet.compute.policy import GpuPolicy, money

PROVIDERS = ("basilica", "vast")
# Seconds from "create sent" to "Actor answers" before any history exists. Basilica: schedule 2-20 s and
# pull 30-300 s of an image of one to several GB (twins/basilica_profile.py), median about 3 min. Vast: the
# host pulls the image itself on a box of unknown bandwidth after the contract is made ("loading" in
# `actual_status`), which the operator docs of Vast put at minutes; we assume 5 min until measured.
PRIOR_START_S: dict[str, float] = {"basilica": 180.0, "vast": 300.0}
DEFAULT_PRIOR_S = 300.0
LEARN_LAST_N = 20  # the newest starts per (provider, GPU model): the market moves, old starts go stale
_ALNUM = re.compile(r"[^0-9a-z]+")
_VENDOR_WORDS = ("nvidia", "tesla", "geforce")


def gpu_key(name: str) -> str:
    """One spelling per GPU model: `TESLA V100`, `Tesla V100` → `v100`; `RTX-A4000`, `RTX A4000` → `rtxa4000`."""
    key = _ALNUM.sub("", (name or "").casefold())
    for word in _VENDOR_WORDS:
        if key.startswith(word):
            key = key[len(word):]
    return key


@dataclass(frozen=True)
class BoxOffer:
    """One box one provider would rent us now. `hourly_usd` is the WHOLE box per hour: on demand the
    listed price, on a bid (spot/interruptible) market the price we would bid."""

    provider: str
    offer_id: str
    gpu_model: str
    gpu_count: int
    gpu_mem_gb: float | None  # per GPU
    hourly_usd: Decimal
    spot: bool
    reliability: float | None = None
    raw: Any = field(default=None, compare=False, repr=False)
    host: str | None = None  # the machine behind the offer, where the provider names it (Vast: machine_id)

    @property
    def market(self) -> str:
        return "spot" if self.spot else "ondemand"

    def label(self) -> str:
        return f"{self.provider}:{self.offer_id} {self.gpu_model} {self.market} x{self.gpu_count}"


def from_basilica(offering: Any) -> BoxOffer:
    """A Basilica `policy.Offering` (rate per GPU) as a box offer (rate per box)."""
    return BoxOffer("basilica", str(offering.id), offering.gpu_type, int(offering.gpu_count),
                    offering.gpu_memory_gb, offering.box_hourly_rate, bool(offering.is_spot), None, offering)


def from_vast(offer: Any) -> BoxOffer | None:
    """A `VastOffer` as a box offer: on demand its `dph_total`, interruptible its `min_bid` (the bid that
    wins the box now; what we would bid). An interruptible offer without a minimum bid cannot be priced,
    so it cannot be proven under the cap: None."""
    interruptible = bool(getattr(offer, "interruptible", False))
    price = getattr(offer, "min_bid", None) if interruptible else getattr(offer, "dph_total", None)
    if price is None:
        return None
    machine = (getattr(offer, "raw", None) or {}).get("machine_id")  # vastai/data/offer.py `machine_id`
    return BoxOffer("vast", str(offer.id), str(offer.gpu_name), int(offer.num_gpus),
                    getattr(offer, "gpu_ram_gb", None), Decimal(str(price)), interruptible,
                    getattr(offer, "reliability", None), offer, None if machine is None else str(machine))


# ---- policy --------------------------------------------------------------------------------------


def refusal(offer: BoxOffer, policy: GpuPolicy, cap_name: str = "SUBNET_MAX_HOURLY_RATE") -> str | None:
    """Why `offer` may not be rented, or None when it may. The cap is on the box price (or bid)."""
    model = gpu_key(offer.gpu_model)
    if not any(gpu_key(a.gpu) in model and a.spot == offer.spot and a.count == offer.gpu_count
               for a in policy.allowed):
        return f"{offer.gpu_model} {offer.market} x{offer.gpu_count} is not allowed ({policy.describe_allowlist()})"
    if not offer.hourly_usd.is_finite() or offer.hourly_usd < 0:
        return f"price {offer.hourly_usd} is not a price"
    if offer.hourly_usd > policy.max_hourly_rate:
        what = "bid" if offer.spot and offer.provider == "vast" else "box price"
        return f"{what} {money(offer.hourly_usd)}/h exceeds {cap_name} {money(policy.max_hourly_rate)}/h"
    return None


# ---- learned start times -------------------------------------------------------------------------


@dataclass(frozen=True)
class StartSample:
    provider: str
    gpu_model: str  # as gpu_key() spells it
    seconds: float
    at: float  # when the create was sent: newest samples win
    host: str | None = None  # the machine, where the row names it


def provider_of(entry: Any) -> str:
    """The ledger's rows: kind "instance" is a Vast instance, "rental"/"deployment" Basilica's; a row may
    say so itself in `detail["provider"]`."""
    detail = getattr(entry, "detail", None) or {}
    return str(detail.get("provider") or ("vast" if entry.kind == "instance" else "basilica"))


def start_s_of(entry: Any) -> float | None:
    """Seconds from the create call to the box being ready, or None when the row proves no start.

    `detail["ready_at"]` (when the Actor first answered) is preferred: `started_at` is when the row went
    active, which for a Basilica deployment is the create call's answer, before the image is pulled."""
    detail = getattr(entry, "detail", None) or {}
    ready = detail.get("ready_at", entry.started_at)
    if ready is None or entry.created_at is None:
        return None
    seconds = float(ready) - float(entry.created_at)
    return seconds if seconds >= 0 else None


def samples_from_ledger(entries: Iterable[Any]) -> list[StartSample]:
    """Start samples from ledger rows (`ledger.LedgerEntry` or alike). Rows without a start, or whose GPU
    model is ambiguous (a deployment that allowed several models records them comma-joined), are skipped."""
    out = []
    for e in entries:
        detail = getattr(e, "detail", None) or {}
        model = detail.get("gpu_model") or e.gpu_type or ""
        seconds = start_s_of(e)
        if seconds is None or not model or "," in model:
            continue
        host = detail.get("machine_id")
        out.append(StartSample(provider_of(e), gpu_key(model), seconds, float(e.created_at),
                               None if host is None else str(host)))
    return out


@dataclass(frozen=True)
class StartEstimate:
    seconds: float
    source: str  # "median of 7 starts" or "prior (no starts yet)"


@dataclass(frozen=True)
class LearnedStarts:
    medians: Mapping[tuple[str, str], tuple[float, int]] = field(default_factory=dict)  # key → (median s, n)
    priors: Mapping[str, float] = field(default_factory=lambda: dict(PRIOR_START_S))
    hosts: Mapping[tuple[str, str], tuple[float, int]] = field(default_factory=dict)  # (provider, host) → ...

    def estimate(self, provider: str, gpu_model: str, host: str | None = None) -> StartEstimate:
        found = self.hosts.get((provider, host)) if host is not None else None
        if found:
            median, n = found
            return StartEstimate(median, f"median of {n} start{'s' if n != 1 else ''} on this machine")
        found = self.medians.get((provider, gpu_key(gpu_model)))
        if found:
            median, n = found
            return StartEstimate(median, f"median of {n} start{'s' if n != 1 else ''}")
        return StartEstimate(self.priors.get(provider, DEFAULT_PRIOR_S), "prior (no starts yet)")


def learn_starts(samples: Iterable[StartSample], last_n: int = LEARN_LAST_N,
                 priors: Mapping[str, float] | None = None) -> LearnedStarts:
    """Median of the newest `last_n` starts per (provider, GPU model)."""
    models: dict[tuple[str, str], list[StartSample]] = {}
    hosts: dict[tuple[str, str], list[StartSample]] = {}
    for s in samples:
        models.setdefault((s.provider, s.gpu_model), []).append(s)
        if s.host is not None:
            hosts.setdefault((s.provider, s.host), []).append(s)
    return LearnedStarts(_medians(models, last_n), dict(PRIOR_START_S if priors is None else priors),
                         _medians(hosts, last_n))


_Key = tuple[str, str]


def _medians(groups: Mapping[_Key, list[StartSample]], last_n: int) -> dict[_Key, tuple[float, int]]:
    out = {}
    for key, group in groups.items():
        newest = sorted(group, key=lambda s: s.at)[-last_n:]
        out[key] = (float(statistics.median(s.seconds for s in newest)), len(newest))
    return out


# ---- ranking -------------------------------------------------------------------------------------


def expected_cost_per_eval(offer: BoxOffer, start_s: float, busy_s: float) -> Decimal:
    seconds = Decimal(str(max(0.0, start_s) + max(0.0, busy_s)))
    return offer.hourly_usd * seconds / 3600


@dataclass(frozen=True)
class Ranked:
    offer: BoxOffer
    cost: Decimal  # expected dollars per evaluation
    start_s: float
    why: str


def rank(offers: Iterable[BoxOffer], policy: GpuPolicy, learned: LearnedStarts, busy_s: float) -> list[Ranked]:
    """Allowed offers, cheapest expected cost per evaluation first. Ties go to the faster start, then the
    lower hourly price, then provider and offer id, so the order never depends on the input's order."""
    ranked = []
    for offer in offers:
        if refusal(offer, policy) is not None:
            continue
        start = learned.estimate(offer.provider, offer.gpu_model, offer.host)
        cost = expected_cost_per_eval(offer, start.seconds, busy_s)
        why = (f"{money(offer.hourly_usd)}/h × (start {start.seconds:.0f} s, {start.source}, + busy "
               f"{busy_s:.0f} s) = ${cost:.5f}/eval")
        ranked.append(Ranked(offer, cost, start.seconds, why))
    return sorted(ranked, key=lambda r: (r.cost, r.start_s, r.offer.hourly_usd, r.offer.provider, r.offer.offer_id))


def refused(offers: Iterable[BoxOffer], policy: GpuPolicy) -> list[tuple[BoxOffer, str]]:
    """The offers the policy refuses, each with its one-line reason (for `offers --explain`)."""
    return [(o, why) for o in offers if (why := refusal(o, policy)) is not None]


def choose(offers: Iterable[BoxOffer], policy: GpuPolicy, learned: LearnedStarts, busy_s: float) -> Ranked | None:
    ranked = rank(offers, policy, learned, busy_s)
    return ranked[0] if ranked else None
