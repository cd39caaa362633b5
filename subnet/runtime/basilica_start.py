"""Waiting for one Basilica deployment to serve, and asking after one whose calls fail.

The thin I/O around the pure pieces: `start_budget.StartClock` says when the miner's own clock
started and when the budget runs out, `basilica_judge` says whose fault what Basilica reports is.
Reads that decide a deletion (the detail at a deadline, events, logs) go ahead of creates.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import httpx

from subnet.compute.deployment_client import DeploymentClient
from subnet.compute.deployments import CreatedDeployment, DeploymentAccess, DeploymentEvent, DeploymentInfo
from subnet.compute.errors import BasilicaError
from subnet.compute.pacer import URGENT
from subnet.compute.start_budget import StartBudget, StartClock
from subnet.protocol import InfraFault, MinerFault
from subnet.runtime.basilica_judge import judge, judge_death
from subnet.runtime.basilica_watch import DeploymentWatch, blocking
from subnet.runtime.http_guard import ResponseTooLarge, capped_client


class StartWatch:
    """One deployment on its way to serving, judged as Basilica reports it."""

    def __init__(self, created: CreatedDeployment, watch: DeploymentWatch, client: DeploymentClient,
                 budget: StartBudget) -> None:
        self.created = created
        self.watch = watch
        self.client = client
        self.budget = budget
        self.clock = StartClock(budget, time.monotonic())
        self._failed_since: float | None = None
        self._events: tuple[DeploymentEvent, ...] | None = None  # read once when it fails, again to conclude

    @property
    def dep_id(self) -> str:
        return self.created.info.id

    async def until_serving(self) -> None:
        """Return once its Actor answers /health through its URL; raise the verdict otherwise."""
        while True:
            summary, detail = await self.watch.view(self.dep_id)
            if summary is not None and summary.is_ready and await healthy(self.created.access):
                self.watch.mark_ready(self.dep_id)
                return
            now = time.monotonic()
            self._observe(summary, detail, now)
            k8s_ready = summary is not None and summary.is_ready
            phase = "ready" if k8s_ready else (detail.phase if detail is not None else None)
            at_deadline = now >= self.clock.deadline(phase)
            if at_deadline:
                detail = await self.watch.detail(self.dep_id)
                if detail is None:
                    raise InfraFault(f"deployment {self.dep_id} could not be read at its start deadline")
                if detail.is_ready and await healthy(self.created.access):
                    return
            if detail is not None:
                if k8s_ready and (detail.phase or "").lower() != "failed":
                    detail = replace(detail, phase="ready")  # the listing is newer than a round-robin detail
                fault = await self._verdict(detail, now, at_deadline)
                if fault is not None:
                    raise fault
            wait = max(0.0, self.clock.deadline(phase) - time.monotonic())
            await asyncio.sleep(min(self.watch.interval, wait) if wait else self.watch.interval)

    def _observe(self, summary: DeploymentInfo | None, detail: DeploymentInfo | None, now: float) -> None:
        if detail is not None:
            self.clock.observe(detail.phase, [c.state for c in detail.containers], now)
            if (detail.phase or "").lower() == "failed":
                self._failed_since = self._failed_since or now
        if summary is not None and summary.is_ready:
            self.clock.observe("ready", [], now)  # Kubernetes' probe passed: the container runs

    async def _verdict(self, detail: DeploymentInfo, now: float, at_deadline: bool) -> Exception | None:
        failed = (detail.phase or "").lower() == "failed"
        settled = self._failed_since is not None and now - self._failed_since >= self.budget.settle_s
        if failed and settled and not at_deadline:  # about to conclude: on what Basilica says now
            detail = await self.watch.detail(self.dep_id) or detail
        events: tuple[DeploymentEvent, ...] = ()
        if failed or at_deadline:  # the pods' events: why it failed, or where it is stuck
            if self._events is None or settled or at_deadline:
                self._events = await read_events(self.client, self.dep_id)
            events = self._events
        verdict = judge(detail, events, budget=self.budget, running_for=self.clock.running_for(now),
                        at_deadline=at_deadline, settled=settled)
        if verdict is None or not isinstance(verdict.fault, MinerFault):
            return verdict.fault if verdict else None
        last = await last_log_line(self.client, self.dep_id)
        return judge(detail, events, budget=self.budget, running_for=self.clock.running_for(now),
                     at_deadline=at_deadline, settled=settled, last_log=last).fault


async def death_check(watch: DeploymentWatch, client: DeploymentClient, dep_id: str, budget: StartBudget) -> Exception | None:
    """After a call failed the way a dead pod fails: None if the deployment still serves, else
    whose fault its end is (waiting up to `settle_s` for the evidence to settle)."""
    settle_by = time.monotonic() + budget.settle_s
    while True:
        try:
            info = await blocking(client.get, dep_id, attempts=2, priority=URGENT)
        except BasilicaError as exc:
            return InfraFault(f"deployment {dep_id} could not be read after its calls failed: {exc}")
        if info.is_ready:
            return None
        events = await read_events(client, dep_id)
        settled = time.monotonic() >= settle_by
        verdict = judge_death(info, events, settled=settled)
        if verdict is not None:
            if isinstance(verdict.fault, MinerFault):
                verdict = judge_death(info, events, settled=settled, last_log=await last_log_line(client, dep_id))
            return verdict.fault
        await asyncio.sleep(min(watch.interval, max(0.0, settle_by - time.monotonic())))


async def read_events(client: DeploymentClient, dep_id: str) -> tuple[DeploymentEvent, ...]:
    try:
        return await blocking(client.events, dep_id)
    except BasilicaError:
        return ()  # no evidence: the judge then blames nobody it cannot prove


async def last_log_line(client: DeploymentClient, dep_id: str) -> str:
    logs = await blocking(client.logs_tail, dep_id, 20)
    return next((ln for ln in reversed(logs.splitlines()) if ln.strip()), "")


async def healthy(access: DeploymentAccess | None) -> bool:
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
