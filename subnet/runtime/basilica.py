"""The Basilica runtime: one private deployment per image per round, on the cheapest allowed GPU
(or on no GPU at all when the validator's challenge declares it needs none: an LLM challenge).

affinetes' own basilica mode creates a pod per method call and passes no GPU options, so this
runtime provisions the deployment itself (`DeploymentClient`: ledger row first, one POST, the
server's UUID for every later call) and calls the Actor through affinetes' URL executor like every
other runtime. Deployments are private because we ask for them so: each call carries that
deployment's share token (from the create answer, held in memory only), never the validator's API
token; without a token no call is sent. Every deployment's friendly name starts with this
validator's identity, so after a crash the next start deletes what it left (ledger by UUID first).

Time: a deployment gets the Basilica start budget (`SUBNET_BASILICA_START_TIMEOUT`, sized in
`compute/start_budget.py`: pulls of minutes are normal); its miner's own clock starts only once
Basilica shows its container running (the Docker start deadline applies from there). Each Actor has
its own box, so it starts its tasks as soon as it serves (no barrier).

Faults, by cause (`basilica_judge.py`): a container that crashes by itself, an image the registry
does not have, an Actor that runs but never answers → the miner; scheduling, pulling, an eviction,
preemption, a spot reclaim, Basilica errors, nothing affordable → infrastructure. A deployment that
dies mid-round turns its remaining tasks into infrastructure (`basilica_session.py`).

Price: deployments take no offering id and no price cap; the price we record is the cheapest allowed
offering's list price for the GPU we asked for, marked as an estimate (docs/operator.md). A CPU-only
deployment has no offering to price it: `BASILICA_CPU_HOURLY_RATE` (an assumed rate) is recorded instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from decimal import Decimal
from typing import AsyncIterator, Mapping, Sequence

from subnet.compute.budget import Budget, RoundCost, expected_hours, refusal
from subnet.compute.deployment_client import DeploymentClient
from subnet.compute.deployments import CreatedDeployment, DeploymentSpec, friendly_name, ledger_owner, owned_prefix
from subnet.compute.errors import BasilicaError
from subnet.compute.policy import Offering, cpu_offering
from subnet.compute.settings import DEFAULT_CPU_HOURLY_RATE
from subnet.compute.selection import Ranked
from subnet.compute.start_budget import StartBudget, life_bound_s, round_calls_s, ttl_s
from subnet.config import Settings
from subnet.protocol import ACTOR_PORT, InfraFault, StartRefused, Submission
from subnet.runtime.affinetes_session import AffinetesSession
from subnet.runtime.basilica_session import DeploymentSession
from subnet.runtime.basilica_start import StartWatch, death_check
from subnet.runtime.basilica_watch import DeploymentWatch, blocking
from subnet.runtime.docker import challenge_needs_gpu
from subnet.state.identity import validator_identity
from subnet.util.text import one_line

log = logging.getLogger(__name__)

OWNER = "validator"
PRICE_SOURCE = "estimate: list price of the cheapest allowed offering for this GPU"
CPU_PRICE_SOURCE = "estimate: BASILICA_CPU_HOURLY_RATE (an assumed rate for a CPU-only deployment)"


class BasilicaRuntime:
    name = "basilica"
    dedicated_hardware = True  # each Actor has its own GPU box: no start barrier (round.py)

    def __init__(self, client: DeploymentClient, settings: Settings, poll_s: float = 3.0,
                 budget: StartBudget | None = None) -> None:
        """`poll_s`: one listing (+ one detail read) per cycle, ~40 requests a minute whatever the
        number of miners: under the 60/min per client of Basilica's public rate limiter.
        `budget`: the start budget (default from the settings; tests pass a time-scaled one)."""
        self.client = client
        self.settings = settings
        self.identity = validator_identity(settings.home)
        self.budget = budget or StartBudget(settings.basilica_start_timeout, settings.start_timeout)
        self.watch = DeploymentWatch(client, poll_s=poll_s)
        self._offering: Offering | None = None  # the cheapest of `_offerings` (the dry run's summary reads it)
        self._offerings: list[Offering] = []
        self._offering_at = 0.0
        self._miners = 1  # this round's deployments (preflight), for the bound on a deployment's calls
        self.needs_gpu = challenge_needs_gpu(settings.challenge)

    def set_needs_gpu(self, needs: bool) -> None:
        """The challenge of the coming rounds needs a GPU (a validator's is fixed; a dry run's may change)."""
        self.needs_gpu = needs

    @property
    def prefix(self) -> str:
        return owned_prefix(self.identity)

    def reclaim_forgotten(self) -> list[str]:
        """Delete every deployment this validator created and a crash left behind."""
        # OWNER alone: rows written by versions before validator ids (the ledger is per state directory).
        return self.client.reclaim(owners={self._owner, OWNER}, prefix=self.prefix)

    @property
    def _owner(self) -> str:
        return ledger_owner(self.identity)

    # ---- before the round: the budget guard ----------------------------------------------

    async def preflight(self, submissions: Sequence[Submission]) -> str | None:
        """One line if the round must be skipped (a spending limit, or nothing to rent)."""
        # Between rounds nothing of ours should be alive: settle what an earlier round or process left.
        try:
            left = await blocking(self.reclaim_forgotten)
            if left:
                log.warning("deleted %d deployment(s) left behind: %s", len(left), ", ".join(left))
        except BasilicaError as exc:
            log.warning("could not reclaim leftover deployments: %s", exc)
        try:
            await blocking(self.client.settle_costs)
        except BasilicaError as exc:
            log.info("usage history unavailable (prices stay estimates): %s", exc)
        if not submissions:  # nothing changed: no deployment this round, nothing to budget
            return None
        try:
            offering = await self.cheapest_offering()
        except InfraFault as exc:
            return f"round skipped: {exc}"
        s = self.settings
        self._miners = len(submissions)
        cost = RoundCost(len(submissions), offering.box_hourly_rate,
                         expected_hours(life_bound_s(self.budget.longest_s, self._calls_s())))
        balance = await self._balance() if s.min_balance is not None else None
        return refusal(Budget(s.max_deployments, _dec(s.max_round_spend), _dec(s.min_balance)), cost, balance)

    async def _balance(self) -> Decimal | None:
        try:
            return Decimal(str((await blocking(self.client.gpu.balance))["balance"]))
        except BasilicaError as exc:
            log.warning("could not read the Basilica balance: %s", exc)
            return None

    # ---- the Runtime port ----------------------------------------------------------------

    def _calls_s(self) -> float:
        return round_calls_s(self.settings, self._miners)

    @contextlib.asynccontextmanager
    async def open(
        self, submission: Submission, environment: Mapping[str, str] | None = None, offer: Ranked | None = None
    ) -> AsyncIterator[DeploymentSession]:
        """`environment`: this Actor's own variables for the round (an LLM challenge's two); `offer`: the
        offering to deploy on (the cloud runtime chose it across providers), else the cheapest."""
        offering = offer.offer.raw if offer is not None else await self.cheapest_offering()
        spec = DeploymentSpec.for_offering(
            offering, name=friendly_name(self.identity, submission.uid, submission.digest), image=submission.source,
            port=ACTOR_PORT, env={**self.settings.forwarded_environment(), **(environment or {})},
            ttl_seconds=ttl_s(self.budget.longest_s, self._calls_s()),
        )
        created: CreatedDeployment | None = None
        try:
            created = await self._create(spec, offering)
            self.watch.watch(created.info.id)
            await StartWatch(created, self.watch, self.client, self.budget).until_serving()
            inner = AffinetesSession.for_url(created.access.base_url, self.settings.max_response_bytes,
                                             created.access.query)
            inner.gpu_type = offering.gpu_type
            inner.hourly_price = float(offering.box_hourly_rate)
            dep_id = created.info.id
            session = DeploymentSession(inner, lambda: death_check(self.watch, self.client, dep_id, self.budget))
            try:
                yield session
            finally:
                await session.close()
        finally:
            if created is not None:
                self.watch.forget(created.info.id)
            # Shielded: a cancelled round still deletes what it created (or leaves the row open).
            await asyncio.shield(self._delete(spec.name))

    async def cheapest_offering(self) -> Offering:
        """The cheapest allowed offering now (cached a minute, so a round and its preflight share one listing)."""
        return (await self.allowed_offerings())[0]

    async def allowed_offerings(self) -> list[Offering]:
        """Every allowed offering now, cheapest box first (the same cached listing). A challenge that
        needs no GPU gets one choice, a CPU-only deployment at the estimated CPU rate, and no listing."""
        if not self.needs_gpu:
            self._offering = cpu_offering(self._cpu_rate())
            return [self._offering]
        if self._offerings and time.monotonic() - self._offering_at < 60:
            return list(self._offerings)
        try:
            offerings = await blocking(self.client.gpu.list_cheap_gpus)
        except BasilicaError as exc:
            raise InfraFault(f"Basilica: {exc}") from None
        if not offerings:
            raise InfraFault("no GPU offering within the policy is available right now")
        self._offerings, self._offering, self._offering_at = list(offerings), offerings[0], time.monotonic()
        return list(offerings)

    def _cpu_rate(self) -> Decimal:
        basilica = getattr(self.client.gpu, "settings", None)  # BasilicaSettings (BASILICA_CPU_HOURLY_RATE)
        return Decimal(str(getattr(basilica, "cpu_hourly_rate", DEFAULT_CPU_HOURLY_RATE)))

    async def _create(self, spec: DeploymentSpec, offering: Offering) -> CreatedDeployment:
        source = CPU_PRICE_SOURCE if offering.cpu_only else PRICE_SOURCE
        try:
            created = await blocking(self.client.create, spec, owner=self._owner,
                                     hourly_rate=offering.box_hourly_rate, price_source=source)
        except BasilicaError as exc:
            row = self.client.ledger.get(spec.name)
            if row is not None and row.state == "failed":  # refused outright: no deployment exists
                raise StartRefused(f"Basilica: {exc}") from None
            raise InfraFault(f"Basilica: {exc}") from None
        if created.access is None:  # the client deletes such a deployment; this is a last guard
            raise InfraFault(f"deployment {spec.name} has no share token: not calling it without one")
        return created

    async def _delete(self, name: str) -> None:
        try:
            closed = await blocking(self.client.delete, name)
        except Exception as exc:  # noqa: BLE001 - the ledger keeps it live; reclaimed at the next round/start
            log.warning("could not delete deployment %s (kept in the ledger for reclaim): %s", name, one_line(str(exc)))
            return
        if not closed:
            log.warning("deployment %s is not yet proven gone; kept in the ledger for reclaim", name)


def _dec(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))
