"""The cloud runtime (`--mode cloud`): each miner on the cheapest allowed box per evaluation left, across markets.

It holds the provider runtimes this validator has credentials for (Basilica, Vast.ai, or both) and
adds one decision per miner, nothing else: renting, readiness, tokens, faults, ledger rows, reclaim
and destroy stay with each provider's runtime.

Before a round (`preflight`, which the round service calls before anything starts) every provider
runs its own preflight (it reclaims what an earlier round left and searches its market, the cap
inside the search; a provider that cannot run the round says why in one line). The offers each
provider found are then ranked together once by `compute.providers.cheapest_across` with start times
learned from the ledger, so a box cheap per hour but slow to start loses to a dearer, faster one.
Each `open()` then takes the best choice still left (`compute.placement.RoundPlan`: a Vast offer is
one box, handed out once; Basilica's offer is a GPU request, good until Basilica refuses one), so a
round with more miners than either market can place runs on both. A provider left out (Vast's daily
search quota spent, a refused key, an API down, a spending limit) costs one warning line and the
round runs on the other; with none left the round is skipped with one line naming each reason.

A start the provider refuses before anything ran (`StartRefused`: the Vast box was rented by someone
else or the create refused, Basilica refused the deployment) moves that miner to the best choice of
another provider (of the same one when no other has a box left), once, with one line. Nothing else
is retried elsewhere: a miner's image that exits at start is its own fault, and a box that started
and then failed may have been paid for. A miner never has two boxes: the second start comes only
after the first was refused, when nothing of the first exists (an unanswered Vast create is not a
refusal: it may have rented a box, so it stays infrastructure and the label finds it at reclaim).

The search a provider runs in its preflight is the one the plan hands out (each runtime keeps it for
a minute), so choosing costs no second search: Vast's daily quota is spent once per round.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Mapping, Sequence

from subnet.compute.placement import RoundPlan
from subnet.compute.policy import GpuPolicy
from subnet.compute.providers import ProviderDown, cheapest_across
from subnet.compute.selection import BoxOffer, LearnedStarts, Ranked, from_basilica, gpu_key
from subnet.compute.start_budget import round_calls_s
from subnet.config import Settings
from subnet.protocol import InfraFault, StartRefused, Submission
from subnet.runtime.docker import challenge_needs_gpu
from subnet.util.text import one_line

log = logging.getLogger(__name__)

SKIPPED = "round skipped: "


@dataclass(frozen=True)
class RoundChoice:
    """The round's best offer and why, the other providers' best, who was left out, and (filled in as
    miners start) how many miners each provider placed."""

    provider: str
    offer: str  # BoxOffer.label(): provider:offer_id GPU market xN
    cost_per_eval: float
    why: str  # "$0.08/h × (start 60 s, median of 5 starts, + busy 120 s) = $0.00400/eval"
    others: Mapping[str, str] = field(default_factory=dict)  # provider → its best, for comparison
    left_out: Mapping[str, str] = field(default_factory=dict)  # provider → why it could not run the round
    hourly_usd: float | None = None  # the offer's box price (or bid) per hour
    placed: Mapping[str, int] = field(default_factory=dict)  # provider → miners started there (the plan's count)

    def line(self) -> str:
        text = f"round's best box on {self.provider}: {self.offer}, {self.why}"
        text += "".join(f"; {name} best {best}" for name, best in self.others.items())
        return text + "".join(f"; {name} left out: {why}" for name, why in self.left_out.items())

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "offer": self.offer, "hourly_usd": self.hourly_usd,
                "cost_per_eval": self.cost_per_eval, "why": self.why, "others": dict(self.others),
                "left_out": dict(self.left_out), "placed": dict(self.placed)}


class RoundOffers:
    """A provider runtime's own search for this round as an `OfferSource` for `cheapest_across`.

    Read from what the runtime keeps after its preflight (a minute), so no second search is sent:
    Vast's allowed offers as its `OfferPool` ranked them, and Basilica's allowed offerings, the
    cheapest of each request (a deployment asks for a GPU model, count and market, not an offering)."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.name = runtime.name

    async def offers(self, policy: GpuPolicy) -> list[BoxOffer]:
        try:
            if self.name == "vast":
                return [r.offer for r in await self.runtime.offers.ranked()]
            if self.name == "basilica":
                return one_per_request(await self.runtime.allowed_offerings())  # cached: no new listing
        except InfraFault as exc:
            raise ProviderDown(self.name, str(exc)) from None
        raise ProviderDown(self.name, f"no offer side for a {self.name!r} runtime")


class MarketRuntime:
    name = "cloud"

    def __init__(self, providers: Sequence[Any], policy: GpuPolicy, settings: Settings,
                 learned: Callable[[], LearnedStarts], *, dedicated_hardware: bool = True) -> None:
        """`providers`: the runtimes with credentials (names "basilica", "vast"). `learned`: start
        times from the ledger history. `dedicated_hardware`: False only when every provider's Actors
        share this machine (the dry run's twins), to keep the round's start barrier."""
        if not providers:
            raise ValueError("cloud mode needs at least one provider runtime")
        self.providers = list(providers)
        self._base_policy = policy
        self.set_needs_gpu(challenge_needs_gpu(settings.challenge))
        self.settings = settings
        self._learned = learned
        self.dedicated_hardware = dedicated_hardware
        self.choice: RoundChoice | None = None
        self._plan: RoundPlan | None = None

    def set_needs_gpu(self, needs: bool) -> None:
        """The challenge of the coming rounds needs a GPU, or not (then Basilica offers a CPU-only
        deployment and Vast any GPU model under the cap: `GpuPolicy.for_challenge`); every provider too."""
        self.policy = self._base_policy.for_challenge(needs)
        for provider in self.providers:
            getattr(provider, "set_needs_gpu", lambda _needs: None)(needs)

    @property
    def provider_names(self) -> list[str]:
        return [p.name for p in self.providers]

    # ---- before the round ------------------------------------------------------------------

    async def preflight(self, submissions: Sequence[Submission]) -> str | None:
        """Rank this round's choices across providers; one line (the round is skipped) when none can run it."""
        self.choice, self._plan = None, None
        refusals = await asyncio.gather(*(_preflight(p, submissions) for p in self.providers))
        if not submissions:
            return None  # nothing to start: the preflights only reclaimed leftovers
        left_out = {p.name: why for p, why in zip(self.providers, refusals) if why}
        ready = [p for p in self.providers if p.name not in left_out]
        busy_s = round_calls_s(self.settings, len(submissions))
        found = await cheapest_across([RoundOffers(p) for p in ready], self.policy, self._learned(), busy_s,
                                      warn=lambda _line: None)  # said below, one line per provider
        left_out |= found.left_out
        best = found.best
        if best is None:
            for p in ready:
                left_out.setdefault(p.name, "no offer within the policy")
            return SKIPPED + "no GPU provider can run this round: " + "; ".join(
                f"{name}: {why}" for name, why in left_out.items())
        self._plan = RoundPlan(found.ranked)
        using = ", ".join(sorted(self._plan.providers_left()))
        for name, why in left_out.items():
            log.warning("%s left out of this round: %s; using %s", name, why, using)
        self.choice = _choice(best, found.ranked, left_out, self._plan.placed)
        log.info("%s", self.choice.line())
        return None

    # ---- the Runtime port ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def open(self, submission: Submission, environment: Mapping[str, str] | None = None) -> AsyncIterator[Any]:
        """The best choice left, on its provider's own `open()` (its session, faults and teardown)."""
        if self._plan is None:
            raise InfraFault("no GPU provider was chosen for this round (every provider was left out)")
        async with contextlib.AsyncExitStack() as stack:
            yield await self._start(submission, environment, stack, self._plan)

    async def _start(self, submission: Submission, environment: Mapping[str, str] | None,
                     stack: contextlib.AsyncExitStack, plan: RoundPlan) -> Any:
        first = plan.take()
        if first is None:
            raise InfraFault("every allowed GPU box of this round is taken (no provider has one left)")
        try:
            return await self._start_on(first, submission, environment, stack, plan)
        except StartRefused as exc:
            plan.refused(first)
            # The other provider's best first (this one may refuse every start: a spending limit);
            # its own next box when the other has none left (a box rented away says nothing of the rest).
            second = plan.take(not_on={first.offer.provider}) or plan.take()
            if second is None:
                raise
            log.warning("%s refused to start uid %d (%s); starting it on %s", first.offer.provider, submission.uid,
                        one_line(str(exc), 200), second.offer.provider)
        return await self._start_on(second, submission, environment, stack, plan)

    async def _start_on(self, choice: Ranked, submission: Submission, environment: Mapping[str, str] | None,
                        stack: contextlib.AsyncExitStack, plan: RoundPlan) -> Any:
        provider = next(p for p in self.providers if p.name == choice.offer.provider)
        session = await stack.enter_async_context(provider.open(submission, environment=environment, offer=choice))
        plan.started(choice)
        return session

    def close(self) -> None:
        for provider in self.providers:
            getattr(provider, "close", lambda: None)()

    async def aclose(self) -> None:
        """Close each provider's async clients (Vast's httpx client) on the serving loop."""
        for provider in self.providers:
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()


async def _preflight(provider: Any, submissions: Sequence[Submission]) -> str:
    """The provider's own preflight as a reason it cannot run the round ("" when it can)."""
    check = getattr(provider, "preflight", None)
    try:
        refusal = await check(submissions) if check is not None else None
    except InfraFault as exc:
        refusal = str(exc)
    refusal = one_line(refusal or "", 300)
    return refusal[len(SKIPPED):] if refusal.startswith(SKIPPED) else refusal


def _choice(best: Ranked, ranked: Sequence[Ranked], left_out: Mapping[str, str],
            placed: Mapping[str, int]) -> RoundChoice:
    others: dict[str, str] = {}
    for r in ranked:
        if r.offer.provider != best.offer.provider and r.offer.provider not in others:
            others[r.offer.provider] = f"{r.offer.label()} ${r.cost:.5f}/eval"
    return RoundChoice(best.offer.provider, best.offer.label(), float(best.cost), best.why, others, dict(left_out),
                       float(best.offer.hourly_usd), placed)


def one_per_request(offerings: Sequence[Any]) -> list[BoxOffer]:
    """The cheapest allowed offering (listed cheapest first) of each Basilica request: any node of the
    same GPU model, count and market serves a deployment, so a dearer twin offering adds nothing."""
    seen: set[tuple[str, int, bool]] = set()
    boxes = []
    for box in (from_basilica(o) for o in offerings):
        if (key := (gpu_key(box.gpu_model), box.gpu_count, box.spot)) not in seen:
            seen.add(key)
            boxes.append(box)
    return boxes
