"""Basilica deployments as the real API behaves: UUID identity, one POST, proof before closing money.

- Every deployment gets a ledger row (keyed by the friendly name we chose) BEFORE the create call;
  the server's UUID goes into the row as soon as we know it, and every later call uses the UUID.
- A create is sent once. If its answer is lost (timeout, 5xx, a JSON error that hides its status)
  we look the friendly name up in `list_deployments()` before anything else: found → adopt it and
  regenerate its share token (the first one was only in the lost answer); not found → the row stays
  open ("maybe created") and the next reclaim settles it. Never a second POST for the same row.
- A row is closed only when a delete by UUID succeeded, or a listing shows neither its UUID nor
  its friendly name (and, for a row whose create answer never came, only after a grace period, so
  a listing that lags the create cannot close a live deployment).
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.deployments import (
    CreatedDeployment,
    DeploymentAccess,
    DeploymentInfo,
    DeploymentSpec,
    access_from,
    deployment_info,
)
from subnet.compute.errors import BasilicaError, NotFound, RateLimited, Unavailable
from subnet.compute.ledger import LedgerEntry
from subnet.util.text import one_line

log = logging.getLogger(__name__)

LIST_GRACE_S = 120.0  # how long a created deployment may take to show in listings


class DeploymentClient:
    def __init__(self, gpu: BasilicaGPUClient, *, clock=time.time) -> None:
        self.gpu = gpu
        self._clock = clock

    @property
    def ledger(self):
        return self.gpu._require_ledger()

    # ---- create --------------------------------------------------------------------------

    def create(self, spec: DeploymentSpec, *, owner: str, hourly_rate: Decimal | None,
               price_source: str = "estimate") -> CreatedDeployment:
        detail = spec.summary() | {"price_source": price_source}
        self.ledger.begin("deployment", spec.name, owner=owner, gpu_type=",".join(spec.gpu_models) or None,
                          gpu_count=spec.gpu_count, is_spot=spec.spot, hourly_rate=hourly_rate, detail=detail)
        try:
            res = self._post_once(spec)
        except BasilicaError as exc:
            if not exc.ambiguous:
                self.ledger.mark_failed(spec.name, str(exc))
                raise
            return self._recover_lost_create(spec, exc)
        info = deployment_info(res)
        self.ledger.mark_active(spec.name, info.id)
        access = access_from(info.url, getattr(res, "share_url", None), getattr(res, "share_token", None), info.public)
        if access is None:  # private, yet no token came back: get a fresh one or give it up
            access = self._fresh_access_or_delete(spec.name, info)
        return CreatedDeployment(info, access)

    def _post_once(self, spec: DeploymentSpec) -> Any:
        """POST /deployments; only a 429 (refused before anything was done) is retried."""
        attempts = self.gpu.settings.retries
        for attempt in range(1, attempts + 1):
            try:
                return self.gpu._call(f"create deployment {spec.name}",
                                      lambda: self.gpu._sdk.create_deployment(**spec.sdk_kwargs()), attempts=1)
            except RateLimited:
                if attempt == attempts:
                    raise
                self.gpu._sleep(min(self.gpu.settings.backoff * 2 ** (attempt - 1), 30.0))
        raise AssertionError("unreachable")

    def _recover_lost_create(self, spec: DeploymentSpec, exc: BasilicaError) -> CreatedDeployment:
        found = self.find_by_friendly_name(spec.name)
        if found is None:
            self.ledger.note(spec.name, f"create answer lost ({one_line(str(exc))}); not listed yet")
            raise Unavailable(f"creating deployment {spec.name}: {exc}; not found by name, left for reclaim")
        log.info("create answer for %s was lost; adopted %s found by friendly name", spec.name, found.id)
        self.ledger.mark_active(spec.name, found.id)
        access = self._fresh_access_or_delete(spec.name, found)
        return CreatedDeployment(found, access, adopted=True)

    def _fresh_access_or_delete(self, name: str, info: DeploymentInfo) -> DeploymentAccess:
        try:
            return self.regenerate_access(info)
        except BasilicaError as exc:
            self.delete(name)
            raise Unavailable(f"deployment {name} has no share token and none could be made ({exc}); deleting it")

    def regenerate_access(self, info: DeploymentInfo) -> DeploymentAccess:
        """A new share token (the old one stops working): `POST /deployments/{id}/share-token`."""
        res = self.gpu._call(f"regenerate the share token of {info.id}",
                             self.gpu._sdk._client.regenerate_share_token, info.id)
        access = access_from(info.url, res.share_url, res.token, public=False)
        if access is None:
            raise BasilicaError(f"regenerated share token for {info.id} came back empty")
        return access

    # ---- read ----------------------------------------------------------------------------

    def get(self, deployment_id: str, attempts: int | None = None, paced: bool = True) -> DeploymentInfo:
        return deployment_info(self.gpu._call(f"read deployment {deployment_id}", self.gpu._sdk.get_deployment,
                                              deployment_id, attempts=attempts, paced=paced))

    def list(self, attempts: int | None = None, paced: bool = True) -> list[DeploymentInfo]:
        """Every deployment of the account. A poller passes `attempts=1` to see a 429 and slow down
        itself, and `paced=False` when it took its pacer token already."""
        res = self.gpu._call("list deployments", self.gpu._sdk.list_deployments, attempts=attempts, paced=paced)
        return [deployment_info(d) for d in res.deployments]

    def find_by_friendly_name(self, name: str) -> DeploymentInfo | None:
        return next((d for d in self.list() if d.friendly_name == name), None)

    def poll_token(self) -> bool:
        """A request of the round's budget for polling, if one is free now (creates and deletes,
        which hold money, never wait behind polls)."""
        return self.gpu._pacer.try_acquire()

    def logs_tail(self, deployment_id: str, lines: int = 20) -> str:
        try:
            return self.gpu._call(f"read logs of {deployment_id}",
                                  lambda: self.gpu._sdk.get_deployment_logs(deployment_id, False, lines))
        except BasilicaError:
            return ""

    # ---- delete --------------------------------------------------------------------------

    def delete(self, name: str, listing: list[DeploymentInfo] | None = None) -> bool:
        """Delete the ledger row `name`'s deployment; True once the row is closed on proof."""
        entry = self.ledger.get(name)
        if entry is None or not entry.live:
            return True
        remote = entry.remote_id or self._id_by_name(name, listing)
        if remote:
            try:
                self.gpu._call(f"delete deployment {remote}", self.gpu._sdk.delete_deployment, remote)
            except NotFound:
                return self._close_if_unlisted(entry, remote, listing=None)
            self.ledger.mark_stopped(name)
            return True
        return self._close_if_unlisted(entry, None, listing)

    def _id_by_name(self, name: str, listing: list[DeploymentInfo] | None) -> str | None:
        listing = self.list() if listing is None else listing
        found = next((d for d in listing if d.friendly_name == name), None)
        if found is not None:
            self.ledger.mark_active(name, found.id)
        return found.id if found else None

    def _close_if_unlisted(self, entry: LedgerEntry, remote: str | None, listing: list[DeploymentInfo] | None) -> bool:
        listing = self.list() if listing is None else listing
        if any((remote and d.id == remote) or d.friendly_name == entry.name for d in listing):
            return False  # a 404 on delete, yet it is listed: keep paying attention, keep the row
        if remote is None and self._clock() - entry.created_at < LIST_GRACE_S:
            return False  # a create whose answer was lost may not be listed yet
        self.ledger.mark_stopped(entry.name, note="gone: not in the deployment listing")
        return True

    # ---- what was charged ------------------------------------------------------------------

    def settle_costs(self, limit: int = 200) -> int:
        """Replace estimates by what Basilica billed, where its usage history lists a deployment's UUID.

        The public server's usage history lists rentals only; if today's lists deployments too, their
        real cost lands in the ledger (`total_cost`, price_source "billed"). Returns rows settled."""
        waiting = {e.remote_id: e for e in self.ledger.entries("deployment", ["stopped"])
                   if e.remote_id and e.total_cost is None}
        if not waiting:
            return 0
        usage = self.gpu._call("read the usage history", lambda: self.gpu._sdk.list_usage_history(limit, 0))
        settled = 0
        for record in usage.get("rentals", []) if isinstance(usage, dict) else []:
            entry = waiting.get(record.get("rental_id"))
            if entry is not None and record.get("current_cost") is not None:
                self.ledger.mark_stopped(entry.name, total_cost=Decimal(str(record["current_cost"])),
                                         note="billed: from the usage history")
                settled += 1
        return settled

    # ---- crash recovery ------------------------------------------------------------------

    def reclaim(self, owners: set[str], prefix: str) -> list[str]:
        """Delete everything this validator left behind: live ledger rows of `owners`, and any listed
        deployment whose friendly name starts with `prefix` (creates whose answer never arrived)."""
        listing = self.list()
        done: list[str] = []
        for entry in self.ledger.live("deployment"):
            if entry.owner in owners and self.delete(entry.name, listing):
                done.append(entry.name)
        closed = set(done)
        for d in listing:
            terminating = d.state.lower() in ("terminating", "deleting")
            if d.friendly_name.startswith(prefix) and d.friendly_name not in closed and not terminating:
                entry = self.ledger.get(d.friendly_name)
                if entry is None or not entry.live:
                    self._delete_unledgered(d)
                    done.append(d.friendly_name)
        return done

    def _delete_unledgered(self, d: DeploymentInfo) -> None:
        try:
            self.gpu._call(f"delete deployment {d.id}", self.gpu._sdk.delete_deployment, d.id)
        except NotFound:
            pass
