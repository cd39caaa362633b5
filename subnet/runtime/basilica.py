"""The Basilica runtime: one private deployment per image per round, on the cheapest allowed GPU.

affinetes' own basilica mode creates a pod per method call and passes no GPU options, so this
runtime provisions the deployment itself (`DeploymentClient`: ledger row first, one POST, the
server's UUID for every later call) and calls the Actor through affinetes' URL executor like every
other runtime. Deployments are private: each call carries that deployment's share token (from the
create answer, held in memory only), never the validator's API token; without a token no call is
sent. Every deployment's friendly name starts with this validator's identity, so after a crash the
next start deletes exactly what it left (ledger by UUID, plus the listing by name prefix).

Faults: Basilica errors, nothing affordable, never scheduled, still pulling → infrastructure (costs
no miner); crash loop, an image the registry says does not exist, or started but never healthy →
`start_failed` with the container's last log line. See `basilica_watch.judge`.

Price: deployments take no offering id and no price cap; the price we record is the cheapest allowed
offering's list price for the GPU we asked for, marked as an estimate (docs/operator.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from decimal import Decimal
from typing import AsyncIterator, Sequence

import httpx

from subnet.compute.budget import Budget, RoundCost, expected_hours, refusal
from subnet.compute.deployment_client import DeploymentClient
from subnet.compute.deployments import (
    CreatedDeployment,
    DeploymentAccess,
    DeploymentInfo,
    DeploymentSpec,
    friendly_name,
    ledger_owner,
    owned_prefix,
)
from subnet.compute.errors import BasilicaError
from subnet.compute.policy import Offering
from subnet.config import Settings
from subnet.protocol import ACTOR_PORT, InfraFault, Submission
from subnet.runtime.affinetes_session import AffinetesSession
from subnet.runtime.basilica_watch import DeploymentWatch, blocking, judge
from subnet.runtime.http_guard import ResponseTooLarge, capped_client
from subnet.util.text import one_line
from subnet.state.identity import validator_identity

log = logging.getLogger(__name__)

OWNER = "validator"
PRICE_SOURCE = "estimate: list price of the cheapest allowed offering for this GPU"


class BasilicaRuntime:
    name = "basilica"
    dedicated_hardware = True  # each Actor has its own GPU box: no start barrier (round.py)

    def __init__(self, client: DeploymentClient, settings: Settings, poll_s: float = 3.0) -> None:
        """`poll_s`: one listing (+ one detail read) per cycle, ~40 requests a minute whatever the
        number of miners: under the 60/min per client of Basilica's public rate limiter."""
        self.client = client
        self.settings = settings
        self.identity = validator_identity(settings.home)
        self.watch = DeploymentWatch(client, poll_s=poll_s)
        self._offering: Offering | None = None
        self._offering_at = 0.0

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
            offering = await self._cheapest()
        except InfraFault as exc:
            return f"round skipped: {exc}"
        s = self.settings
        cost = RoundCost(len(submissions), offering.box_hourly_rate,
                         expected_hours(s.start_timeout, s.tasks, s.per_miner, s.call_timeout))
        balance = await self._balance() if s.min_balance is not None else None
        return refusal(Budget(s.max_deployments, _dec(s.max_round_spend), _dec(s.min_balance)), cost, balance)

    async def _balance(self) -> Decimal | None:
        try:
            return Decimal(str((await blocking(self.client.gpu.balance))["balance"]))
        except BasilicaError as exc:
            log.warning("could not read the Basilica balance: %s", exc)
            return None

    # ---- the Runtime port ----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def open(self, submission: Submission) -> AsyncIterator[AffinetesSession]:
        offering = await self._cheapest()
        spec = DeploymentSpec.for_offering(
            offering, name=friendly_name(self.identity, submission.uid, submission.digest), image=submission.source,
            port=ACTOR_PORT, env=self.settings.forwarded_environment(),
            ttl_seconds=int(self.settings.start_timeout + 3600),
        )
        created: CreatedDeployment | None = None
        try:
            created = await self._create(spec, offering)
            self.watch.watch(created.info.id)
            await self._wait_ready(created)
            session = AffinetesSession.for_url(created.access.base_url, self.settings.max_response_bytes,
                                               created.access.query)
            session.gpu_type = offering.gpu_type
            session.hourly_price = float(offering.box_hourly_rate)
            try:
                yield session
            finally:
                await session.close()
        finally:
            if created is not None:
                self.watch.forget(created.info.id)
            # Shielded: a cancelled round still deletes what it created (or leaves the row open).
            await asyncio.shield(self._delete(spec.name))

    async def _cheapest(self) -> Offering:
        if self._offering is not None and time.monotonic() - self._offering_at < 60:
            return self._offering
        try:
            offerings = await blocking(self.client.gpu.list_cheap_gpus)
        except BasilicaError as exc:
            raise InfraFault(f"Basilica: {exc}") from None
        if not offerings:
            raise InfraFault("no GPU offering within the policy is available right now")
        self._offering, self._offering_at = offerings[0], time.monotonic()
        return offerings[0]

    async def _create(self, spec: DeploymentSpec, offering: Offering) -> CreatedDeployment:
        try:
            created = await blocking(self.client.create, spec, owner=self._owner,
                                              hourly_rate=offering.box_hourly_rate, price_source=PRICE_SOURCE)
        except BasilicaError as exc:
            raise InfraFault(f"Basilica: {exc}") from None
        if created.access is None:  # the client deletes such a deployment; this is a last guard
            raise InfraFault(f"deployment {spec.name} has no share token: not calling it without one")
        return created

    async def _wait_ready(self, created: CreatedDeployment) -> None:
        dep_id, timeout = created.info.id, self.settings.start_timeout
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            summary, detail = await self.watch.view(dep_id)
            if summary is not None and summary.is_ready and await _healthy(created.access):
                self.watch.mark_ready(dep_id)
                return
            fault = await self._fault(detail, dep_id, at_deadline=False) if detail else None
            if fault is not None:
                raise fault
            await asyncio.sleep(min(self.watch.interval, max(0.0, deadline - time.monotonic())))
        detail = await self.watch.detail(dep_id)
        if detail is None:
            raise InfraFault(f"deployment {dep_id} could not be read at its start deadline")
        if detail.is_ready and await _healthy(created.access):
            return
        raise await self._fault(detail, dep_id, at_deadline=True)

    async def _fault(self, detail: DeploymentInfo, dep_id: str, at_deadline: bool) -> Exception | None:
        """`judge`'s verdict; a miner's start failure is judged again with the container's last log line."""
        timeout = self.settings.start_timeout
        verdict = judge(detail, at_deadline, timeout)
        if verdict is None or isinstance(verdict.fault, InfraFault):
            return verdict.fault if verdict else None
        logs = await blocking(self.client.logs_tail, dep_id, 20)
        last = next((ln for ln in reversed(logs.splitlines()) if ln.strip()), "")
        return judge(detail, at_deadline, timeout, last_log=last).fault

    async def _delete(self, name: str) -> None:
        try:
            closed = await blocking(self.client.delete, name)
        except Exception as exc:  # noqa: BLE001 - the ledger keeps it live; reclaimed at the next round/start
            log.warning("could not delete deployment %s (kept in the ledger for reclaim): %s", name, one_line(str(exc)))
            return
        if not closed:
            log.warning("deployment %s is not yet proven gone; kept in the ledger for reclaim", name)


async def _healthy(access: DeploymentAccess | None) -> bool:
    """GET /health through the share URL, with the token: what the validator's calls will use."""
    if access is None:
        return False
    try:
        # A capped client on the shared TLS context: a fresh default client loads the CA bundle each time.
        async with capped_client(64 << 10, connect_timeout=5.0) as client:
            answer = await asyncio.wait_for(client.get(f"{access.base_url}/health", params=access.query), 5.0)
            return answer.status_code == 200
    except (httpx.HTTPError, asyncio.TimeoutError, ResponseTooLarge):
        return False


def _dec(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))
