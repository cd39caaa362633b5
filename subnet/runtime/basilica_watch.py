"""Waiting for Basilica deployments within the API's rate limit.

`DeploymentWatch` makes ONE `list_deployments()` per poll cycle for every deployment the round is
waiting on (ahead of creates in the request pace), plus at most one `get_deployment()` for the
details a listing lacks (phase, container states) when the pace has a token to spare: a deployment
the listing shows failed first, else round-robin over the not-ready ones.
On a 429 it doubles its interval. So a round costs about one request per poll interval, however
many miners it has. Whose fault a stuck deployment is: `basilica_judge.py`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from subnet.compute.deployment_client import DeploymentClient
from subnet.compute.deployments import DeploymentInfo
from subnet.compute.errors import BasilicaError, RateLimited
from subnet.compute.pacer import POLL, URGENT
from subnet.util.text import one_line

log = logging.getLogger(__name__)
T = TypeVar("T")


_POOL = ThreadPoolExecutor(max_workers=64, thread_name_prefix="subnet-basilica")  # SDK calls block a thread each


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking Basilica call on the runtime's own pool (the default pool has a few threads)."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(fn, *args, **kwargs))


class DeploymentWatch:
    """A shared, rate-limited view of the round's deployments."""

    def __init__(self, client: DeploymentClient, poll_s: float = 2.0, max_poll_s: float = 30.0) -> None:
        self.client = client
        self.poll_s = poll_s
        self.max_poll_s = max_poll_s
        self.interval = poll_s
        self._listing: dict[str, DeploymentInfo] = {}
        self._details: dict[str, DeploymentInfo] = {}
        self._watched: dict[str, bool] = {}  # id → ready
        self._turn = 0
        self._fetched_at = 0.0
        self._refresh: asyncio.Task | None = None

    def watch(self, deployment_id: str) -> None:
        self._watched[deployment_id] = False

    def forget(self, deployment_id: str) -> None:
        self._watched.pop(deployment_id, None)
        self._details.pop(deployment_id, None)

    def mark_ready(self, deployment_id: str) -> None:
        self._watched[deployment_id] = True

    async def view(self, deployment_id: str) -> tuple[DeploymentInfo | None, DeploymentInfo | None]:
        """(listing summary, latest detail) after a refresh no older than the poll interval."""
        if time.monotonic() - self._fetched_at >= self.interval:
            if self._refresh is None or self._refresh.done():
                self._refresh = asyncio.ensure_future(self._do_refresh())
            await asyncio.shield(self._refresh)
        return self._listing.get(deployment_id), self._details.get(deployment_id)

    async def detail(self, deployment_id: str) -> DeploymentInfo | None:
        """One direct read, ahead of creates: it decides whether a deployment is deleted (at a start
        deadline, or when its calls fail mid-round)."""
        try:
            info = await blocking(self.client.get, deployment_id, priority=URGENT)
        except BasilicaError:
            return self._details.get(deployment_id)
        self._details[deployment_id] = info
        return info

    async def _do_refresh(self) -> None:
        try:
            # one listing per cycle goes before creates (it tells when paid deployments are ready or
            # failed); the detail read below only takes a token nobody is waiting for
            listing = await blocking(self.client.list, 1, True, POLL)
            self._listing = {d.id: d for d in listing}
            pending = [i for i, ready in self._watched.items() if not ready and i in self._listing]
            failed = [i for i in pending if self._listing[i].state.lower() == "failed"]  # the CR state model
            if pending and self.client.poll_token():
                target = failed[0] if failed and failed[0] not in self._details else pending[self._turn % len(pending)]
                self._turn += 1
                self._details[target] = await blocking(self.client.get, target, 1, False)
            self.interval = max(self.poll_s, self.interval * 0.75)
        except RateLimited:
            self.interval = min(self.interval * 2, self.max_poll_s)
            log.warning("Basilica rate-limited the deployment poll; polling every %.0fs", self.interval)
        except BasilicaError as exc:
            log.warning("polling deployments failed: %s", one_line(str(exc)))
        finally:
            self._fetched_at = time.monotonic()
