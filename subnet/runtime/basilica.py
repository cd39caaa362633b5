"""The Basilica runtime: one private deployment per image per round, on the cheapest allowed GPU.

affinetes' own basilica mode creates a pod per method call and passes no GPU options, so this
runtime provisions the deployment itself (through `BasilicaGPUClient`, which writes the spend
ledger before anything is created) and calls the Actor through affinetes' URL executor, exactly
like the other runtimes. Deployments are private: calls carry the deployment's share token, never
the validator's API token. Teardown is shielded from cancellation; anything a crash leaves behind
is in the ledger and reclaimed at the next start (`reclaim_forgotten`).

Fault attribution: Basilica errors, no affordable GPU, and a deployment never scheduled are
infrastructure (nobody's fault); a deployment that fails or never becomes healthy once running is
the miner's image at fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any, AsyncIterator

from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.deployments import DeploymentSpec
from subnet.compute.errors import BasilicaError
from subnet.config import Settings
from subnet.protocol import ACTOR_PORT, FaultKind, InfraFault, MinerFault, Submission
from subnet.runtime.affinetes_session import AffinetesSession
from subnet.text import one_line

log = logging.getLogger(__name__)

OWNER = "validator"
_FAILED_STATES = {"failed", "error", "crashloopbackoff"}
_PENDING_STATES = {"pending", "scheduling", "creating", ""}


def deployment_name(submission: Submission) -> str:
    """DNS-safe and unique per round: uid, the digest's head, and a random tail."""
    return f"sn-u{submission.uid}-{submission.digest[7:17]}-{secrets.token_hex(3)}"


class BasilicaRuntime:
    name = "basilica"

    def __init__(self, client: BasilicaGPUClient, settings: Settings, poll_s: float = 2.0) -> None:
        self.client = client
        self.settings = settings
        self.poll_s = poll_s

    def reclaim_forgotten(self) -> list[str]:
        """Delete every deployment the ledger says this validator still owns (after a crash)."""
        return self.client.reclaim(owner=OWNER)

    @contextlib.asynccontextmanager
    async def open(self, submission: Submission) -> AsyncIterator[AffinetesSession]:
        offering = await self._cheapest()
        spec = DeploymentSpec.for_offering(
            offering, name=deployment_name(submission), image=submission.source, port=ACTOR_PORT,
            env=self.settings.forwarded_environment(), ttl_seconds=int(self.settings.start_timeout + 3600),
        )
        created = False
        try:
            await self._create(spec, offering)
            created = True
            info = await self._wait_ready(spec.name)
            params = {"token": info.share_token} if info.share_token else None
            session = AffinetesSession.for_url(info.url, self.settings.max_response_bytes, params)
            session.gpu_type = offering.gpu_type
            session.hourly_price = float(offering.box_hourly_rate)
            try:
                yield session
            finally:
                await session.close()
        finally:
            if created:
                await asyncio.shield(self._delete(spec.name))

    async def _cheapest(self) -> Any:
        try:
            offerings = await asyncio.to_thread(self.client.list_cheap_gpus)
        except BasilicaError as exc:
            raise InfraFault(f"Basilica: {exc}") from None
        if not offerings:
            raise InfraFault("no GPU offering within the policy is available right now")
        return offerings[0]

    async def _create(self, spec: DeploymentSpec, offering: Any) -> None:
        try:
            await asyncio.to_thread(
                self.client.create_deployment, spec, owner=OWNER, hourly_rate=offering.box_hourly_rate
            )
        except BasilicaError as exc:
            raise InfraFault(f"Basilica: {exc}") from None

    async def _wait_ready(self, name: str) -> Any:
        deadline = time.monotonic() + self.settings.start_timeout
        info = None
        while time.monotonic() < deadline:
            try:
                info = await asyncio.to_thread(self.client.get_deployment, name)
            except BasilicaError as exc:
                raise InfraFault(f"Basilica: {exc}") from None
            state = (info.state or "").lower()
            if info.is_ready:
                return info
            if state in _FAILED_STATES:
                raise MinerFault(FaultKind.START_FAILED, f"deployment {state}: {one_line(info.message or '')}")
            await asyncio.sleep(self.poll_s)
        state = (info.state if info else "") or ""
        if state.lower() in _PENDING_STATES:
            raise InfraFault(f"deployment not scheduled within {self.settings.start_timeout:g}s (state {state or 'unknown'})")
        raise MinerFault(FaultKind.START_FAILED, f"deployment not healthy within {self.settings.start_timeout:g}s (state {state})")

    async def _delete(self, name: str) -> None:
        try:
            await asyncio.to_thread(self.client.delete_deployment, name)
        except Exception as exc:  # noqa: BLE001 - the ledger keeps it live; reclaimed at next start
            log.warning("could not delete deployment %s (left in the ledger for reclaim): %s", name, one_line(str(exc)))

