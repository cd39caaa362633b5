"""The Vast.ai runtime: one instance per image per round, on the cheapest allowed offer, never above the cap.

For each submission: the offer is the cheapest allowed per evaluation (`vast_offers.OfferPool`: the
cap in every search, the policy of `compute.selection`); a ledger row (kind "instance", name = the
instance's Vast label `sn-<validator id>-u<uid>-<digest12>-<rand>`) is written before the create
call; the instance runs the Actor image with `runtype: args` (its own entrypoint), port 8000 mapped
to a public port, and a fresh per-instance token in SUBNET_ACTOR_TOKEN that its server checks on
every request (`subnet.protocol.actor_auth`). No validator secret goes into an instance's
environment: only the token, the port mapping and the operator's forwarded variables minus any
known secret. Interruptible boxes are bid at their minimum bid, at or under the cap.

Readiness is `actual_status` "running" and /health answering on the mapped public port with the
token. Faults are judged by cause (`vast_judge`): a bad image or a container exiting at start is
the miner's; no offer, a host error, an outbid or lost machine is infrastructure. At the end the
instance is destroyed and its row closed only on proof; whatever a crash left is reclaimed at
start and before each round (`vast_reclaim`), by ledger and by label prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from decimal import Decimal
from typing import Any, AsyncIterator, Callable, Mapping, Sequence

from subnet.compute.budget import Budget, RoundCost, expected_hours, refusal
from subnet.compute.ledger import Ledger
from subnet.compute.policy import GpuPolicy
from subnet.compute.selection import Ranked, learn_starts, samples_from_ledger
from subnet.compute.start_budget import StartBudget, life_bound_s, round_calls_s
from subnet.compute.vast import VastAuthError, VastError
from subnet.config import NEVER_FORWARDED, Settings
from subnet.protocol import InfraFault, StartRefused, Submission
from subnet.protocol.actor_auth import ACTOR_TOKEN_ENV, bearer_header, new_token
from subnet.runtime.affinetes_session import AffinetesSession
from subnet.runtime.basilica_session import DeploymentSession
from subnet.runtime.docker import challenge_needs_gpu
from subnet.runtime.vast_judge import judge_death
from subnet.runtime.vast_offers import OfferPool, bid_for
from subnet.runtime.vast_reclaim import KIND, destroy, reclaim
from subnet.runtime.vast_start import InstanceWatch, StartWait
from subnet.state.identity import validator_identity
from subnet.util.text import one_line

log = logging.getLogger(__name__)

PORT_MAPPING = {"-p 8000:8000": "1"}  # Vast's env form of a port mapping (`vastai/api/instances.py`)
# Names a validator's secrets go by: never forwarded into an instance, whatever SUBNET_FORWARD_ENV says.
DEFAULT_START_S = 900.0  # create → /health: the host pulls the image itself, of unknown bandwidth


def instance_name(identity: str, uid: int, digest: str) -> str:
    """`sn-<validator id>-u<uid>-<digest12>-<rand>`: the ledger name and the Vast label."""
    return f"sn-{identity}-u{uid}-{digest.split(':', 1)[-1][:12]}-{secrets.token_hex(3)}"


class VastRuntime:
    name = "vast"
    dedicated_hardware = True  # each Actor has its own rented box: no start barrier (round.py)

    def __init__(self, client_of: Callable[[], Any], settings: Settings, ledger: Ledger, policy: GpuPolicy, *,
                 budget: StartBudget | None = None, poll_s: float = 5.0, disk_gb: float = 16.0,
                 secrets_to_keep: Sequence[str] = ()) -> None:
        """`client_of`: () -> VastClient for the running event loop. `secrets_to_keep`: values (the
        Vast key) that must never appear in an instance's environment."""
        self._client_of = client_of
        self.settings = settings
        self.ledger = ledger
        self.policy = policy
        self.identity = validator_identity(settings.home)
        self.budget = budget or StartBudget(DEFAULT_START_S, settings.start_timeout)
        self.watch = InstanceWatch(client_of, poll_s)
        self.offers = OfferPool(client_of, policy, self._learned, disk_gb=disk_gb)
        self._base_policy = policy
        self.set_needs_gpu(challenge_needs_gpu(settings.challenge))
        self.disk_gb = disk_gb
        self._secrets = {s for s in secrets_to_keep if s}
        self._miners = 1

    def set_needs_gpu(self, needs: bool) -> None:
        """The challenge of the coming rounds needs a GPU (a validator's is fixed; a dry run's may change).
        Vast rents GPU machines only: a challenge that needs none takes the cheapest of any model."""
        self.policy = self._base_policy.for_challenge(needs)
        self.offers.use_policy(self.policy)

    @property
    def prefix(self) -> str:
        return f"sn-{self.identity}-"

    @property
    def owner(self) -> str:
        return f"validator:{self.identity}"

    def _learned(self):
        return learn_starts(samples_from_ledger(self.ledger.entries(KIND)))

    async def reclaim(self, close: bool = False) -> list[str]:
        """Destroy every instance this validator created that is still alive (by ledger and label).
        `close`: close this loop's client after (a start-up reclaim on a loop of its own)."""
        client = self._client_of()
        try:
            return await reclaim(client, self.ledger, owners={self.owner}, prefix=self.prefix)
        finally:
            if close:
                await client.aclose()

    # ---- before the round ------------------------------------------------------------------

    async def preflight(self, submissions: Sequence[Submission]) -> str | None:
        """Reclaim leftovers; one line if the round must be skipped (no offer, a spending limit)."""
        try:
            left = await self.reclaim()
            if left:
                log.warning("destroyed %d Vast instance(s) left behind: %s", len(left), ", ".join(left))
        except VastAuthError as exc:
            # A refused key refuses the search too: the round's one line (the skip, or the cloud
            # runtime's drop-out) says it; a second line here would repeat it every round.
            if submissions:
                return f"round skipped: Vast refused the key (leftovers not reclaimed): {one_line(str(exc))}"
            log.warning("could not reclaim leftover Vast instances: %s", one_line(str(exc)))
        except VastError as exc:
            log.warning("could not reclaim leftover Vast instances: %s", one_line(str(exc)))
        if not submissions:
            return None
        s = self.settings
        self._miners = len(submissions)
        self.offers.busy_s = self._calls_s()
        try:
            best = (await self.offers.ranked())[:1]
        except InfraFault as exc:
            return f"round skipped: {exc}"
        if not best:
            return "round skipped: no Vast offer within the policy is available right now"
        cost = RoundCost(len(submissions), best[0].offer.hourly_usd,
                         expected_hours(life_bound_s(self.budget.longest_s, self._calls_s())))
        balance = None
        if s.min_balance is not None:
            with contextlib.suppress(VastError):
                balance = await self._client_of().balance()
        return refusal(Budget(s.max_deployments, _dec(s.max_round_spend), _dec(s.min_balance)), cost, balance)

    def _calls_s(self) -> float:
        return round_calls_s(self.settings, self._miners)

    # ---- the Runtime port ------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def open(
        self, submission: Submission, environment: Mapping[str, str] | None = None, offer: Ranked | None = None
    ) -> AsyncIterator[DeploymentSession]:
        """`environment`: this Actor's own variables for the round (an LLM challenge's two); `offer`: the
        box to rent (the cloud runtime chose it across providers); else the best left."""
        ranked = offer if offer is not None else await self.offers.take()
        name = instance_name(self.identity, submission.uid, submission.digest)
        token = new_token()
        instance_id = await self._create(ranked, name, submission.source, self._instance_env(token, environment))
        try:
            url = await StartWait(self.watch, instance_id, name, token, self.budget).until_serving()
            self.ledger.add_detail(name, ready_at=time.time())
            inner = AffinetesSession.for_url(url, self.settings.max_response_bytes).add_headers(
                bearer_header(token))
            inner.gpu_type = ranked.offer.gpu_model
            inner.hourly_price = float(ranked.offer.hourly_usd)
            session = DeploymentSession(inner, lambda: self._death_check(instance_id, name))
            try:
                yield session
            finally:
                await session.close()
        finally:
            # Shielded: a cancelled round still destroys what it created (or leaves the row open).
            await asyncio.shield(destroy(self._client_of(), self.ledger, name, instance_id))

    async def _create(self, ranked: Any, name: str, image: str, env: Mapping[str, str]) -> int:
        offer = ranked.offer
        bid = bid_for(ranked, self.policy.max_hourly_rate)
        self.ledger.begin(KIND, name, owner=self.owner, offering_id=offer.offer_id, gpu_type=offer.gpu_model,
                          gpu_count=offer.gpu_count, is_spot=offer.spot, hourly_rate=offer.hourly_usd,
                          detail={"provider": "vast", "gpu_model": offer.gpu_model, "bid": str(bid) if bid else None,
                                  "machine_id": offer.host})  # start times are learned per machine too
        try:
            instance_id = await self._client_of().create_instance(
                int(offer.offer_id), image=image, env=dict(env), price=bid,
                disk_gb=self.disk_gb, label=name)
        except VastError as exc:
            reason = f"Vast create on offer {offer.offer_id}: {one_line(str(exc))}"
            if exc.ambiguous:  # it may exist: the row stays open and the label finds it at reclaim
                self.ledger.note(name, f"create answer lost: {one_line(str(exc), 200)}")
                raise InfraFault(reason) from None
            self.ledger.mark_failed(name, one_line(str(exc), 300))
            raise StartRefused(reason) from None  # refused: no instance exists, nothing was paid
        self.ledger.mark_active(name, str(instance_id), offer.hourly_usd)
        return instance_id

    def _instance_env(self, token: str, environment: Mapping[str, str] | None = None) -> dict[str, str]:
        forwarded = {k: v for k, v in self.settings.forwarded_environment().items()
                     if k.upper() not in NEVER_FORWARDED and v not in self._secrets and k != ACTOR_TOKEN_ENV}
        return {**forwarded, **(environment or {}), ACTOR_TOKEN_ENV: token, **PORT_MAPPING}

    async def aclose(self) -> None:
        """Close the running loop's Vast client (the validator's stop calls it, on the serving loop)."""
        close = getattr(self._client_of, "aclose", None)
        if close is not None:
            await close()

    async def _death_check(self, instance_id: int, name: str) -> Exception | None:
        try:
            row = await self._client_of().instance(instance_id)
        except VastError as exc:
            return InfraFault(f"instance {name} could not be read after its calls failed: {one_line(str(exc))}")
        return judge_death(row, name)


def _dec(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


class ClientPerLoop:
    """`() -> VastClient` for the running event loop: an httpx connection pool belongs to the loop
    that made it, and a validator's start-up reclaim runs on a loop of its own."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._loop: Any = None
        self._client: Any = None

    def __call__(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._loop, self._client = loop, self._make()
        return self._client

    async def aclose(self) -> None:
        """Close the client made for the running loop, if any; a later call makes a fresh one. A client
        of another loop is left alone: its connections belong to that loop, which closed them."""
        client, mine = self._client, self._loop is asyncio.get_running_loop()
        if client is not None and mine:
            self._client = self._loop = None
            await client.aclose()
