"""Waiting for Vast.ai instances to serve: one shared listing per poll, and /health with the token.

A round starts one instance per image. Each waits on `InstanceWatch.get`, which refreshes one
account listing (`GET /api/v1/instances/`, paged) at most every `poll_s` for all of them, so the API
load is a few requests per poll whatever the number of miners (Vast answers 429 per endpoint and
identity when called too often; vast-python `vastai/api/client.py`). An instance not (yet) in the
listing is read by id before anyone calls it gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import httpx

from subnet.compute.start_budget import StartBudget, StartClock
from subnet.compute.vast import VastError
from subnet.protocol import ACTOR_PORT, InfraFault
from subnet.protocol.actor_auth import bearer_header
from subnet.runtime.http_guard import ResponseTooLarge, capped_client
from subnet.runtime.vast_judge import is_running, judge_start


class InstanceWatch:
    """The account's instances, listed at most once per `poll_s` however many waiters ask."""

    def __init__(self, client_of: Any, poll_s: float) -> None:
        self._client_of = client_of  # () -> VastClient (made on the running loop)
        self.poll_s = poll_s
        self._rows: dict[int, Any] = {}
        self._at = float("-inf")
        self._lock = asyncio.Lock()

    async def get(self, instance_id: int) -> Any:
        """The instance's newest row, or None when the account has no such instance."""
        async with self._lock:
            if time.monotonic() - self._at >= self.poll_s:
                rows = await self._client_of().instances()
                self._rows, self._at = {r.id: r for r in rows}, time.monotonic()
        row = self._rows.get(instance_id)
        if row is None:  # a listing may lag a fresh create: the detail read decides
            row = await self._client_of().instance(instance_id)
        return row


class StartWait:
    """One instance on its way to serving its Actor, judged by cause (`vast_judge`)."""

    def __init__(self, watch: InstanceWatch, instance_id: int, name: str, token: str, budget: StartBudget) -> None:
        self.watch = watch
        self.instance_id = instance_id
        self.name = name
        self.token = token
        self.budget = budget
        self.clock = StartClock(budget, time.monotonic())

    async def until_serving(self) -> str:
        """The Actor's base URL once /health answers with the token; raises the verdict otherwise."""
        while True:
            try:
                row = await self.watch.get(self.instance_id)
            except VastError as exc:  # the account cannot be read: the host side's problem
                if time.monotonic() >= self.clock.deadline():
                    raise InfraFault(f"instance {self.name}: Vast could not be read: {exc}") from None
                await asyncio.sleep(self.watch.poll_s)
                continue
            now = time.monotonic()
            url = row.public_url(ACTOR_PORT) if row is not None else None
            if is_running(row):
                self.clock.observe(None, ["running"], now)
                if url and await healthy(url, self.token):
                    return url
            at_deadline = now >= self.clock.deadline()
            verdict = judge_start(row, self.name, running_for=self.clock.running_for(now), at_deadline=at_deadline,
                                  boot_s=self.budget.boot_s, total_s=self.budget.total_s)
            if verdict is not None:
                raise verdict
            wait = max(0.0, self.clock.deadline() - time.monotonic())
            await asyncio.sleep(min(self.watch.poll_s, wait) if wait else self.watch.poll_s)


async def healthy(url: str, token: str) -> bool:
    """GET /health on the public port with the instance token: what the validator's calls use."""
    with contextlib.suppress(httpx.HTTPError, asyncio.TimeoutError, ResponseTooLarge):
        async with capped_client(64 << 10, connect_timeout=5.0) as client:
            answer = await asyncio.wait_for(client.get(f"{url}/health", headers=bearer_header(token)), 5.0)
            return answer.status_code == 200
    return False
