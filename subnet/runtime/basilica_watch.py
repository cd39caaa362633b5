"""Waiting for Basilica deployments within the API's rate limit, and judging whose fault a stuck one is.

`DeploymentWatch` makes ONE `list_deployments()` per poll cycle for every deployment the round is
waiting on, plus at most one `get_deployment()` (round-robin over the not-ready ones) for the
details a listing lacks (phase, container states). On a 429 it doubles its interval. So a round
costs about one request per poll interval, however many miners it has.

`judge` is pure: from what Basilica says about a deployment, decide infra or miner fault.
- container crash-looping / failed phase → the miner's image (`start_failed`, with its last log line);
- image pull failing because the registry says the image does not exist → the miner;
- at the deadline: never scheduled / still pulling → infrastructure; started but never healthy → miner.
Container reasons are Kubernetes' own (`ContainerStatusSnapshot.reason` in basilica-sdk 0.36.8
`_basilica.pyi`: "CrashLoopBackOff", "ImagePullBackOff", "OOMKilled", ...).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from subnet.compute.deployment_client import DeploymentClient
from subnet.compute.deployments import DeploymentInfo
from subnet.compute.errors import BasilicaError, RateLimited
from subnet.protocol import FaultKind, InfraFault, MinerFault
from subnet.util.text import one_line

log = logging.getLogger(__name__)
T = TypeVar("T")


_POOL = ThreadPoolExecutor(max_workers=64, thread_name_prefix="subnet-basilica")  # SDK calls block a thread each


async def blocking(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking Basilica call on the runtime's own pool (the default pool has a few threads)."""
    return await asyncio.get_running_loop().run_in_executor(_POOL, functools.partial(fn, *args, **kwargs))

# Kubernetes container reasons, as SRV's operator reads them (`phase_detection::determine_phase`).
_CRASH_REASONS = {"crashloopbackoff", "error", "oomkilled", "createcontainererror", "createcontainerconfigerror",
                  "containercannotrun", "runcontainererror"}
_PULL_REASONS = {"errimagepull", "imagepullbackoff", "pullbackoff", "invalidimagename", "errimageneverpull"}
_NOT_FOUND = ("not found", "manifest unknown", "does not exist", "no such image", "name unknown", "404")
_UNSCHEDULED = {"", "pending", "scheduling"}


@dataclass(frozen=True)
class Verdict:
    fault: Exception  # MinerFault or InfraFault


def judge(info: DeploymentInfo, at_deadline: bool, timeout: float, last_log: str = "") -> Verdict | None:
    """Whose fault a deployment that is not (yet) serving is, or None to keep waiting.

    Phases are SRV's operator `DeploymentPhase` (pending, scheduling, pulling, initializing,
    storage_sync, starting, health_check, ready, degraded, failed, ...): a crash loop or OOM is
    `failed` at once; an image that cannot be pulled is `pulling` for 300 s, then `failed` too, so a
    pull failure is told apart by the container's reason, not by the phase."""
    phase = (info.phase or "").lower()
    reasons = {c.reason.lower() for c in info.containers if c.reason}
    detail = next((c.message for c in info.containers if c.message), "") or ""
    if reasons & _PULL_REASONS:
        if any(word in detail.lower() for word in _NOT_FOUND):
            return Verdict(MinerFault(FaultKind.START_FAILED, f"image cannot be pulled: {one_line(detail)}"))
        if phase == "failed" or at_deadline:
            return Verdict(InfraFault(f"deployment could not pull its image within {timeout:g}s: "
                                      f"{one_line(detail) or 'ImagePullBackOff'}"))
        return None
    if reasons & _CRASH_REASONS or phase == "failed":
        why = next(iter(sorted(reasons & _CRASH_REASONS)), "failed")
        tail = one_line(last_log or detail)
        return Verdict(MinerFault(FaultKind.START_FAILED, f"deployment {why}" + (f": {tail}" if tail else "")))
    if info.state.lower() == "failed":  # SRV: the API could not create the Kubernetes resources
        return Verdict(InfraFault(f"Basilica could not create the deployment: {one_line(info.message or '')}"))
    if not at_deadline:
        return None
    started = any(c.state.lower() in ("running", "terminated") for c in info.containers)
    if phase == "pulling":
        return Verdict(InfraFault(f"deployment still pulling its image after {timeout:g}s"))
    if phase in _UNSCHEDULED and not started:
        return Verdict(InfraFault(f"deployment not scheduled within {timeout:g}s (phase {phase or '?'}): "
                                  "no node with the requested GPU"))
    where = "answers Kubernetes but not /health through its URL" if phase == "ready" else f"phase {phase or '?'}"
    tail = f": {one_line(last_log)}" if last_log else ""
    return Verdict(MinerFault(FaultKind.START_FAILED, f"deployment not healthy within {timeout:g}s ({where}){tail}"))


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
        """One direct read (used once, at a deadline)."""
        try:
            info = await blocking(self.client.get, deployment_id)
        except BasilicaError:
            return self._details.get(deployment_id)
        self._details[deployment_id] = info
        return info

    async def _do_refresh(self) -> None:
        try:
            if not self.client.poll_token():
                return  # the request budget is spoken for (creates, deletes): poll next cycle
            listing = await blocking(self.client.list, 1, False)
            self._listing = {d.id: d for d in listing}
            pending = [i for i, ready in self._watched.items() if not ready and i in self._listing]
            if pending and self.client.poll_token():
                target = pending[self._turn % len(pending)]
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
