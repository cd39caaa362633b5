"""The GPU provider port, the offer side of its two adapters, and the cheapest box across providers.

A provider rents boxes that run one Actor image each. The round engine sees only `GpuProvider`:

    offers(policy)              → normalised BoxOffers (selection.py), the cap already in the search
    start(offer, image, env, label) → handle;  wait_ready(handle) → address + auth;  stop(handle)
    mine()                      → our live boxes;   reclaim()  → stop every box of ours

This module owns the offer side (and, for `subnet gpus`, list/stop/balance); starting, readiness and
reclaim live in the runtimes (`subnet/runtime/basilica*.py`, `subnet/runtime/vast*.py`), which implement
the rest of the port.

The one policy over both providers is the seed allowlist and the hourly cap:
`SUBNET_MAX_HOURLY_RATE`, or `BASILICA_MAX_HOURLY_RATE` when only that is set (it keeps working), and
`SUBNET_ALLOWED_GPU_TYPES`, or `BASILICA_ALLOWED_GPU_TYPES`. Environment beats `.env`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Awaitable, Callable, Iterable, Protocol, Sequence

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from subnet.compute.policy import (
    DEFAULT_ALLOWED_GPU_TYPES,
    DEFAULT_MAX_HOURLY_RATE,
    GpuPolicy,
    parse_allowlist,
    parse_max_rate,
)
from subnet.compute.selection import BoxOffer, LearnedStarts, Ranked, from_basilica, from_vast, gpu_key, rank, refused
from subnet.compute.settings import ALLOWLIST_NAMES, CAP_NAMES, set_variable, variable_holding
from subnet.util.text import one_line

log = logging.getLogger(__name__)

PROVIDER_NAMES = ("basilica", "vast")
VAST_MIN_RELIABILITY = 0.95  # Vast's own reliability score; below it boxes die mid-round too often


class ProviderDown(Exception):
    """A provider cannot be used now (quota, key refused, API down, not configured). One line."""

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider}: {one_line(reason)}")
        self.provider = provider
        self.reason = one_line(reason)


class OfferSource(Protocol):
    name: str

    async def offers(self, policy: GpuPolicy) -> list[BoxOffer]:
        """Offers under the policy's cap (refusals are still re-checked by selection). Raises ProviderDown."""


class GpuProvider(OfferSource, Protocol):
    """The whole port. Handles are the provider's own ids; a runtime keeps them in the ledger."""

    async def start(self, offer: BoxOffer, image: str, *, env: dict[str, str], label: str) -> str: ...
    async def wait_ready(self, handle: str, timeout_s: float) -> tuple[str, dict[str, str]]: ...  # url, auth headers
    async def stop(self, handle: str) -> None: ...
    async def mine(self) -> list[Any]: ...
    async def reclaim(self) -> list[str]: ...


# ---- the policy over both providers -------------------------------------------------------------


class SelectionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    max_hourly_rate: str = Field(str(DEFAULT_MAX_HOURLY_RATE), validation_alias=AliasChoices(
        "SUBNET_MAX_HOURLY_RATE", "BASILICA_MAX_HOURLY_RATE"))
    allowed_gpu_types: str = Field(DEFAULT_ALLOWED_GPU_TYPES, validation_alias=AliasChoices(
        "SUBNET_ALLOWED_GPU_TYPES", "BASILICA_ALLOWED_GPU_TYPES"))


def load_policy() -> GpuPolicy:
    """The allowlist and cap for every provider. Raises PolicyFormatError (one line, naming the variable
    that held the bad value) on bad values."""
    s = SelectionSettings()
    return GpuPolicy(parse_allowlist(s.allowed_gpu_types, variable_holding(ALLOWLIST_NAMES)),
                     parse_max_rate(s.max_hourly_rate, variable_holding(CAP_NAMES)))


def cap_variable() -> str | None:
    """Which variable sets the cap (environment first, then `.env`), or None when the default applies."""
    return set_variable(CAP_NAMES)


# ---- Basilica: offers from today's client ------------------------------------------------------


class BasilicaOffers:
    """The offer side of the Basilica adapter over `BasilicaGPUClient` (sync SDK: run in a thread).

    Basilica lists prices but takes none: the cap is applied to the listed price when we choose, and a
    deployment's bill cannot be capped by the server (see docs/operator.md)."""

    name = "basilica"

    def __init__(self, client: Any) -> None:
        self.client = client

    async def offers(self, policy: GpuPolicy) -> list[BoxOffer]:
        from subnet.compute.errors import BasilicaError

        try:
            listed = await asyncio.to_thread(self.client.list_offerings)
        except BasilicaError as exc:
            raise ProviderDown(self.name, str(exc)) from None
        return [from_basilica(o) for o in listed]

    async def mine(self) -> list[Any]:
        return await asyncio.to_thread(self.client.list_rentals)

    async def stop(self, handle: str) -> Any:
        return await asyncio.to_thread(self.client.stop, handle)

    async def balance(self) -> Decimal:
        res = await asyncio.to_thread(self.client.balance)
        return Decimal(str(res["balance"]))


# ---- Vast: offers with the cap in the search ----------------------------------------------------

# Vast spells GPU models its own way (`gpu_name` is matched exactly by the search). Allowlist names that
# differ: the data-center cards carry "Tesla". Any other name is sent with hyphens as spaces
# ("RTX-A4000" → "RTX A4000"). A wrong guess only loses offers: selection re-checks the allowlist.
_VAST_NAMES = {"v100": ("Tesla V100",), "p100": ("Tesla P100",), "t4": ("Tesla T4",), "k80": ("Tesla K80",)}


def vast_gpu_names(allowlist_gpu: str) -> tuple[str, ...]:
    return _VAST_NAMES.get(gpu_key(allowlist_gpu), (allowlist_gpu.replace("-", " ").replace("_", " "),))


def vast_queries(policy: GpuPolicy, **extra: Any) -> list[Any]:
    """One `OfferQuery` per (market, GPU count) in the allowlist, each with the cap as its `max_dph`:
    on demand Vast filters `dph_total lte cap`, interruptible `min_bid lte cap`."""
    from subnet.compute.vast import OfferQuery

    groups: dict[tuple[bool, int], list[str]] = {}
    for entry in policy.allowed:
        if not entry.count:  # Vast rents GPU machines only: a no-GPU entry has no Vast search
            continue
        names = groups.setdefault((entry.spot, entry.count), [])
        # an entry of any model (`GpuPolicy.for_challenge`) names none: the query then has no gpu_name filter
        names += [n for n in (vast_gpu_names(entry.gpu) if entry.gpu else ()) if n not in names]
    return [OfferQuery(gpu_names=tuple(names), num_gpus=count, interruptible=spot, max_dph=policy.max_hourly_rate,
                       min_reliability=VAST_MIN_RELIABILITY, **extra)
            for (spot, count), names in sorted(groups.items())]


class VastOffers:
    """The offer side of the Vast adapter (and list/stop/balance for `subnet gpus`) over `VastClient`."""

    name = "vast"

    def __init__(self, client: Any) -> None:
        self.client = client

    async def offers(self, policy: GpuPolicy, *, capped: bool = True) -> list[BoxOffer]:
        """The allowlist's offers, the cap inside each search; `capped=False` only to say why an offer
        was refused (`subnet gpus rent`: above the cap, or not in the allowlist at all)."""
        found: list[BoxOffer] = []
        for query in vast_queries(policy):
            if not capped:
                query = replace(query, max_dph=None)
            for offer in await self._guard(self.client.search_offers(query)):
                box = from_vast(offer)
                if box is not None:
                    found.append(box)
        return found

    async def mine(self, label_prefix: str = "") -> list[Any]:
        return [i for i in await self._guard(self.client.instances()) if (i.label or "").startswith(label_prefix)]

    async def stop(self, handle: str) -> None:
        await self._guard(self.client.destroy_instance(int(handle)))

    async def balance(self) -> Decimal:
        return await self._guard(self.client.balance())

    async def _guard(self, call: Awaitable[Any]) -> Any:
        from subnet.compute.vast import VastError, VastNotFound

        try:
            return await call
        except VastNotFound:
            raise
        except VastError as exc:
            raise ProviderDown(self.name, _vast_reason(exc)) from None


def _vast_reason(exc: Exception) -> str:
    from subnet.compute.vast import VastAuthError, VastQuotaExceeded

    if isinstance(exc, VastQuotaExceeded):
        return f"daily search quota exhausted (resets at UTC midnight): {exc}"
    if isinstance(exc, VastAuthError):
        return f"key refused: {exc}"
    return str(exc)


# ---- across providers ---------------------------------------------------------------------------


@dataclass
class Choice:
    """Every allowed offer ranked, the refused ones with their reasons, and the providers left out."""

    ranked: list[Ranked] = field(default_factory=list)
    refused: list[tuple[BoxOffer, str]] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)  # provider → why (one line)

    @property
    def best(self) -> Ranked | None:
        return self.ranked[0] if self.ranked else None


async def cheapest_across(providers: Sequence[OfferSource], policy: GpuPolicy, learned: LearnedStarts,
                          busy_s: float, *, warn: Callable[[str], None] | None = None) -> Choice:
    """Ask every provider at once; a provider whose search fails is left out with ONE warning line, and
    the round goes on with the others. Nothing above the cap is ever ranked (selection.refusal)."""
    warn = warn or log.warning
    answers = await asyncio.gather(*(p.offers(policy) for p in providers), return_exceptions=True)
    offers: list[BoxOffer] = []
    choice = Choice()
    for provider, answer in zip(providers, answers):
        if isinstance(answer, ProviderDown):
            choice.left_out[provider.name] = answer.reason
        elif isinstance(answer, BaseException):
            raise answer  # a bug, not a provider being down: never hidden
        else:
            offers += answer
    used = [p.name for p in providers if p.name not in choice.left_out]
    for name, reason in choice.left_out.items():
        warn(f"{name} left out of this selection: {reason}; " + (f"using {', '.join(used)}" if used else
                                                                 "no provider left"))
    choice.ranked = rank(offers, policy, learned, busy_s)
    choice.refused = refused(offers, policy)
    return choice


def select_providers(which: str, available: Iterable[str] = PROVIDER_NAMES) -> list[str]:
    """`--provider basilica|vast|all` → provider names; ValueError (one line) otherwise."""
    if which == "all":
        return list(available)
    if which in PROVIDER_NAMES:
        return [which]
    raise ValueError(f"--provider must be basilica, vast or all, not {which!r}")
