"""Which Vast.ai offer an image's instance is rented on: the cheapest allowed per evaluation.

One search per (market, GPU count) the allowlist names (`compute.providers.vast_queries`), the cap inside each query (on demand
`dph_total lte cap`, interruptible `min_bid lte cap`: `OfferQuery`), then the cross-provider policy of
`subnet.compute.selection` (allowlist + `SUBNET_MAX_HOURLY_RATE`, start times learned from this
validator's ledger) ranks them. A round rents one box per image, so the offers found are kept for a
minute and each one is handed out once (a box cannot be rented twice); Vast's daily search quota is
spent per round, not per miner.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any, Callable

from subnet.compute.policy import GpuPolicy
from subnet.compute.providers import vast_queries
from subnet.compute.selection import LearnedStarts, Ranked, from_vast, rank
from subnet.compute.vast import VastError
from subnet.protocol import InfraFault, StartRefused

FRESH_S = 60.0


class OfferPool:
    """This round's allowed offers, ranked; each handed out once."""

    def __init__(self, client_of: Callable[[], Any], policy: GpuPolicy, learned: Callable[[], LearnedStarts], *,
                 disk_gb: float = 16.0) -> None:
        self._client_of = client_of
        self.policy = policy
        self._learned = learned
        self.disk_gb = disk_gb
        self._ranked: list[Ranked] = []
        self._at = float("-inf")
        self._lock = asyncio.Lock()
        self.busy_s = 600.0

    def use_policy(self, policy: GpuPolicy) -> None:
        """Rank by `policy` from now on (the last search was for another one)."""
        self.policy, self._ranked, self._at = policy, [], float("-inf")

    async def ranked(self) -> list[Ranked]:
        """The allowed offers, cheapest per evaluation first (searched again when a minute old)."""
        async with self._lock:
            if time.monotonic() - self._at >= FRESH_S or not self._ranked:
                self._ranked = await self._search()
                self._at = time.monotonic()
            return list(self._ranked)

    async def take(self) -> Ranked:
        """The best offer not yet handed out; InfraFault when none is left within the policy."""
        await self.ranked()
        async with self._lock:
            if not self._ranked:
                raise StartRefused("no Vast offer within the policy is available right now "
                                 f"(allowlist {self.policy.describe_allowlist()}, cap ${self.policy.max_hourly_rate}/h)")
            return self._ranked.pop(0)

    async def _search(self) -> list[Ranked]:
        client, found, errors = self._client_of(), [], []
        for query in vast_queries(self.policy, disk_gb=self.disk_gb):
            try:
                found += await client.search_offers(query)
            except VastError as exc:
                errors.append(str(exc))
        if errors and not found:
            raise InfraFault(f"Vast offers could not be searched: {errors[0]}")
        boxes = [b for b in (from_vast(o) for o in found) if b is not None]
        return rank(boxes, self.policy, self._learned(), self.busy_s)


def bid_for(ranked: Ranked, cap: Decimal) -> Decimal | None:
    """The bid for an interruptible offer (its minimum bid: at or under the cap, or refused by the
    policy already); None on demand."""
    if not ranked.offer.spot:
        return None
    return min(ranked.offer.hourly_usd, cap)
