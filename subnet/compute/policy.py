"""Which Basilica GPU offerings may be rented, and which one wins. Pure: no I/O, no SDK.

The API quotes `hourly_rate` per GPU; what we pay is the whole box, so every comparison here is on
the box price (per-GPU rate × GPU count). Money is `Decimal` end to end so a box that costs exactly
the cap is allowed and 0.147 × 3 is never "0.44099999".

Allowlist format (`BASILICA_ALLOWED_GPU_TYPES`): comma-separated `GPU:MARKET:COUNT` entries, e.g.
`V100:spot:1,RTX-A4000:ondemand:2`. GPU is matched as a case-insensitive substring of the offering's
`gpu_type` ("V100" matches "TESLA V100-SXM2-16GB"); MARKET is `spot` or `ondemand` and COUNT the
exact number of GPUs in the box; both must match exactly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

DEFAULT_ALLOWED_GPU_TYPES = "V100:spot:1,V100:ondemand:1,RTX-A4000:ondemand:1,RTX-A4000:ondemand:2,RTX-A6000:spot:1"
DEFAULT_MAX_HOURLY_RATE = Decimal("0.44")

_MARKETS = {"spot": True, "ondemand": False, "on-demand": False}
_GPU_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")


class PolicyFormatError(ValueError):
    """A malformed policy setting. The message is one line and names the variable."""


@dataclass(frozen=True)
class AllowedGpu:
    gpu: str  # substring of gpu_type, compared case-insensitively
    spot: bool
    count: int

    def matches(self, offering: Offering) -> bool:
        return (
            self.gpu.casefold() in offering.gpu_type.casefold()
            and self.spot == offering.is_spot
            and self.count == offering.gpu_count
        )

    def __str__(self) -> str:
        if not self.count:
            return "no-gpu"
        return f"{self.gpu or 'any'}:{'spot' if self.spot else 'ondemand'}:{self.count}"


@dataclass(frozen=True)
class Offering:
    """One secure-cloud offering, as the API lists it (rate is per GPU)."""

    id: str
    gpu_type: str
    gpu_count: int
    is_spot: bool
    gpu_hourly_rate: Decimal
    provider: str = ""
    region: str = ""
    gpu_memory_gb: int | None = None  # per GPU; what deployments can schedule by

    @property
    def box_hourly_rate(self) -> Decimal:
        if not self.gpu_count:  # a CPU-only box (`cpu_offering`): its rate is the box's
            return self.gpu_hourly_rate
        return self.gpu_hourly_rate * self.gpu_count

    @property
    def market(self) -> str:
        return "spot" if self.is_spot else "ondemand"

    @property
    def cpu_only(self) -> bool:
        return not self.gpu_count

    def to_json(self) -> dict:
        # `hourly_rate` is the BOX price: the number operators and the scorer care about.
        return {
            "id": self.id,
            "gpu_type": self.gpu_type,
            "gpu_count": self.gpu_count,
            "is_spot": self.is_spot,
            "hourly_rate": float(self.box_hourly_rate),
            "hourly_rate_per_gpu": float(self.gpu_hourly_rate),
            "provider": self.provider,
            "region": self.region,
        }


@dataclass(frozen=True)
class GpuPolicy:
    allowed: tuple[AllowedGpu, ...]
    max_hourly_rate: Decimal = DEFAULT_MAX_HOURLY_RATE

    @classmethod
    def default(cls) -> GpuPolicy:
        return cls(parse_allowlist(DEFAULT_ALLOWED_GPU_TYPES), DEFAULT_MAX_HOURLY_RATE)

    @classmethod
    def from_strings(cls, allowed: str, max_rate: str) -> GpuPolicy:
        return cls(parse_allowlist(allowed), parse_max_rate(max_rate))

    def refusal(self, offering: Offering) -> str | None:
        """Why `offering` may not be rented, or None when it may."""
        if not any(entry.matches(offering) for entry in self.allowed):
            return (
                f"{offering.gpu_type} {offering.market} x{offering.gpu_count} is not in "
                f"BASILICA_ALLOWED_GPU_TYPES ({self.describe_allowlist()})"
            )
        if offering.box_hourly_rate > self.max_hourly_rate:
            return (
                f"box price {money(offering.box_hourly_rate)}/h ({offering.gpu_count} x "
                f"{money(offering.gpu_hourly_rate)}) exceeds BASILICA_MAX_HOURLY_RATE {money(self.max_hourly_rate)}/h"
            )
        return None

    def allowed_offerings(self, offerings: list[Offering]) -> list[Offering]:
        """Allowed offerings, cheapest box first (ties: cheaper per GPU, then id, so order is stable)."""
        keep = [o for o in offerings if self.refusal(o) is None]
        return sorted(keep, key=lambda o: (o.box_hourly_rate, o.gpu_hourly_rate, o.id))

    def cheapest(self, offerings: list[Offering]) -> Offering | None:
        allowed = self.allowed_offerings(offerings)
        return allowed[0] if allowed else None

    def for_challenge(self, needs_gpu: bool) -> GpuPolicy:
        """This policy for a challenge that needs a GPU; for one that needs none (an LLM challenge), any
        box under the same cap: no GPU at all, or one GPU of ANY model. The allowlist names the GPUs a
        challenge's work needs, so a challenge that needs none takes the cheapest box whatever its GPU."""
        return self if needs_gpu else GpuPolicy(NO_GPU_NEEDED, self.max_hourly_rate)

    def describe_allowlist(self) -> str:
        return ",".join(str(entry) for entry in self.allowed)


# `AllowedGpu.gpu` "" is a substring of every model name: one GPU of any model, either market, or none.
NO_GPU_NEEDED = (AllowedGpu("", False, 0), AllowedGpu("", False, 1), AllowedGpu("", True, 1))


def parse_allowlist(text: str, variable: str = "BASILICA_ALLOWED_GPU_TYPES") -> tuple[AllowedGpu, ...]:
    entries = [part.strip() for part in (text or "").split(",") if part.strip()]
    if not entries:
        raise PolicyFormatError(f"{variable} is empty; expected e.g. {DEFAULT_ALLOWED_GPU_TYPES}")
    return tuple(_parse_entry(entry, variable) for entry in entries)


def _parse_entry(entry: str, variable: str) -> AllowedGpu:
    parts = [p.strip() for p in entry.split(":")]
    hint = "expected GPU:spot|ondemand:COUNT, e.g. V100:spot:1"
    if len(parts) != 3:
        raise PolicyFormatError(f"{variable}: bad entry {entry!r}; {hint}")
    gpu, market, count = parts
    if not _GPU_NAME.match(gpu):
        raise PolicyFormatError(f"{variable}: bad GPU name {gpu!r} in {entry!r}; {hint}")
    if market.lower() not in _MARKETS:
        raise PolicyFormatError(f"{variable}: bad market {market!r} in {entry!r}; {hint}")
    if not count.isdigit() or int(count) < 1:
        raise PolicyFormatError(f"{variable}: bad GPU count {count!r} in {entry!r}; {hint}")
    return AllowedGpu(gpu=gpu, spot=_MARKETS[market.lower()], count=int(count))


def parse_max_rate(text: str | Decimal, variable: str = "BASILICA_MAX_HOURLY_RATE") -> Decimal:
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise PolicyFormatError(f"{variable}: {str(text)!r} is not a number of dollars per hour, e.g. 0.44") from None
    if not value.is_finite() or value <= 0:
        raise PolicyFormatError(f"{variable}: {str(text)!r} must be a positive number of dollars per hour, e.g. 0.44")
    return value


def parse_rate(text: str) -> Decimal:
    """The API's per-GPU decimal string; raises ValueError on garbage (the adapter skips those)."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        raise ValueError(f"bad hourly_rate {text!r}") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"bad hourly_rate {text!r}")
    return value


def money(value: Decimal | float) -> str:
    """$0.44, $0.3 → $0.30, $0.147 stays $0.147: cents always shown, no false precision added."""
    amount = Decimal(str(value))
    cents = amount.quantize(Decimal("0.01"))
    return f"${cents}" if cents == amount else f"${amount.normalize():f}"


CPU_ONLY = "CPU"  # the gpu_type shown for a box without a GPU


def cpu_offering(hourly_rate: Decimal) -> Offering:
    """A Basilica deployment without a GPU, for a challenge that needs none. Basilica lists no CPU
    offerings and deployments carry no price, so `hourly_rate` is the operator's estimate."""
    return Offering(id="cpu", gpu_type=CPU_ONLY, gpu_count=0, is_spot=False, gpu_hourly_rate=hourly_rate)
