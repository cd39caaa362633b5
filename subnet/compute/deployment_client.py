"""Basilica deployments as the real API behaves: UUID identity, one POST, proof before closing money.

- Every deployment gets a ledger row (keyed by the friendly name we chose) BEFORE the create call;
  the server's UUID goes into the row as soon as we know it, and every later call uses the UUID.
- A create whose answer is lost is settled by `recovery.settle_unanswered`, safe on both server
  generations: adopted when listed under our name, re-sent only to a server that lists no names
  (there create is idempotent per name and the answer is the UUID we lost), otherwise left open
  until a listing proves it absent. A private deployment is private because we asked for it: its
  access needs a share token whatever the server echoes back (the public server echoes no
  `public`, and the SDK then says True).
- A row is closed only when a delete by UUID succeeded, or a listing proves it gone.
- Deletes, and the reads that decide one, go before creates in our own request pace (`pacer.py`).
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
    DeploymentEvent,
    DeploymentInfo,
    DeploymentSpec,
    access_from,
    deployment_info,
    events_from,
)
from subnet.compute.errors import BasilicaError, NotFound, RateLimited, Unavailable
from subnet.compute.ledger import LedgerEntry
from subnet.compute.pacer import NORMAL, URGENT
from subnet.compute.policy import CPU_ONLY
from subnet.compute.recovery import LIST_GRACE_S, Step, close_after_404, settle_unanswered
from subnet.util.text import one_line

log = logging.getLogger(__name__)

__all__ = ["DeploymentClient", "LIST_GRACE_S", "USAGE_PAGE"]
USAGE_PAGE = 100  # SRV `api/routes/billing.rs` 127-131: a `limit` above 100 is a 400
USAGE_PAGES_MAX = 50


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
        self.ledger.begin("deployment", spec.name, owner=owner, gpu_type=",".join(spec.gpu_models) or CPU_ONLY,
                          gpu_count=spec.gpu_count, is_spot=spec.spot, hourly_rate=hourly_rate, detail=detail)
        try:
            res = self._post_once(spec)
        except BasilicaError as exc:
            if not exc.ambiguous:
                self.ledger.mark_failed(spec.name, str(exc))
                raise
            return self._recover_lost_create(spec, exc)
        return self._created(spec, res)

    def _created(self, spec: DeploymentSpec, res: Any, adopted: bool = False) -> CreatedDeployment:
        info = deployment_info(res)
        self.ledger.mark_active(spec.name, info.id)
        # The request decides `public`: an echoed (or defaulted) True never drops the token.
        access = access_from(info.url, getattr(res, "share_url", None), getattr(res, "share_token", None), spec.public)
        if access is None:  # private, yet no token came back: get a fresh one or give it up
            access = self._fresh_access_or_delete(spec.name, info)
        return CreatedDeployment(info, access, adopted=adopted)

    def _post_once(self, spec: DeploymentSpec, priority: int = NORMAL) -> Any:
        """POST /deployments; only a 429 (refused before anything was done) is retried."""
        attempts = self.gpu.settings.retries
        for attempt in range(1, attempts + 1):
            try:
                return self.gpu._call(f"create deployment {spec.name}",
                                      lambda: self.gpu._sdk.create_deployment(**spec.sdk_kwargs()), attempts=1,
                                      priority=priority)
            except RateLimited:
                if attempt == attempts:
                    raise
                self.gpu._sleep(min(self.gpu.settings.backoff * 2 ** (attempt - 1), 30.0))
        raise AssertionError("unreachable")

    def _recover_lost_create(self, spec: DeploymentSpec, exc: BasilicaError) -> CreatedDeployment:
        try:
            listing = self.list()
        except BasilicaError as err:
            self.ledger.note(spec.name, f"create answer lost ({one_line(str(exc))}); listing failed too")
            raise Unavailable(f"creating deployment {spec.name}: {exc}; listing failed ({err}), left for reclaim")
        decision = settle_unanswered(spec.name, listing, self._known_ids(), age_s=0.0)
        if decision.step is Step.ADOPT:
            log.info("create answer for %s was lost; adopted %s found by friendly name", spec.name, decision.remote_id)
            found = next(d for d in listing if d.id == decision.remote_id)
            self.ledger.mark_active(spec.name, found.id)
            return CreatedDeployment(found, self._fresh_access_or_delete(spec.name, found), adopted=True)
        if decision.step is Step.REPOST:
            log.info("create answer for %s was lost; %s", spec.name, decision.why)
            try:
                return self._created(spec, self._post_once(spec), adopted=True)
            except BasilicaError as err:
                self.ledger.note(spec.name, f"create answer lost twice ({one_line(str(err))})")
                raise Unavailable(f"creating deployment {spec.name}: {err}; left for reclaim") from None
        self.ledger.note(spec.name, f"create answer lost ({one_line(str(exc))}); {decision.why}")
        raise Unavailable(f"creating deployment {spec.name}: {exc}; {decision.why}, left for reclaim")

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

    def get(self, deployment_id: str, attempts: int | None = None, paced: bool = True,
            priority: int = NORMAL) -> DeploymentInfo:
        return deployment_info(self.gpu._call(f"read deployment {deployment_id}", self.gpu._sdk.get_deployment,
                                              deployment_id, attempts=attempts, paced=paced, priority=priority))

    def list(self, attempts: int | None = None, paced: bool = True, priority: int = NORMAL) -> list[DeploymentInfo]:
        """Every deployment of the account. A poller passes `attempts=1` to see a 429 and slow down
        itself, and `paced=False` when it took its pacer token already."""
        res = self.gpu._call("list deployments", self.gpu._sdk.list_deployments, attempts=attempts, paced=paced,
                             priority=priority)
        return [deployment_info(d) for d in res.deployments]

    def events(self, deployment_id: str, limit: int = 20, priority: int = URGENT) -> tuple[DeploymentEvent, ...]:
        """The newest Kubernetes events of its pods: why a pod was evicted, preempted, backed off."""
        return events_from(self.gpu._call(f"read events of {deployment_id}", self.gpu._sdk.get_deployment_events,
                                          deployment_id, limit, attempts=2, priority=priority))

    def poll_token(self) -> bool:
        """A request of the round's budget for polling, if one is free now and nothing is queued
        (creates and deletes, which hold money, never wait behind polls)."""
        return self.gpu._pacer.try_acquire()

    def logs_tail(self, deployment_id: str, lines: int = 20) -> str:
        try:
            return self.gpu._call(f"read logs of {deployment_id}",
                                  lambda: self.gpu._sdk.get_deployment_logs(deployment_id, False, lines),
                                  attempts=2, priority=URGENT)
        except BasilicaError:
            return ""

    # ---- delete --------------------------------------------------------------------------

    def delete(self, name: str, listing: list[DeploymentInfo] | None = None) -> bool:
        """Delete the ledger row `name`'s deployment; True once the row is closed on proof."""
        entry = self.ledger.get(name)
        if entry is None or not entry.live:
            return True
        remote = entry.remote_id or self._settle(entry, listing)
        if remote is None:
            return not self.ledger.get(name).live
        try:
            self.gpu._call(f"delete deployment {remote}", self.gpu._sdk.delete_deployment, remote, priority=URGENT)
        except NotFound:
            if not close_after_404(remote, name, self.list(priority=URGENT)):
                return False  # a 404 on delete, yet it is listed: keep paying attention, keep the row
            self.ledger.mark_stopped(name, note="gone: not in the deployment listing")
            return True
        self.ledger.mark_stopped(name)
        return True

    def _settle(self, entry: LedgerEntry, listing: list[DeploymentInfo] | None) -> str | None:
        """The UUID of a row whose create answer never came, or None (row closed, or left open)."""
        listing = self.list(priority=URGENT) if listing is None else listing
        decision = settle_unanswered(entry.name, listing, self._known_ids(), self._clock() - entry.created_at)
        if decision.step is Step.ADOPT:
            self.ledger.mark_active(entry.name, decision.remote_id)
            return decision.remote_id
        if decision.step is Step.REPOST:
            spec = DeploymentSpec.from_summary(entry.name, entry.detail)
            try:
                remote = deployment_info(self._post_once(spec, priority=URGENT)).id
            except BasilicaError as exc:
                self.ledger.note(entry.name, f"{decision.why}: {one_line(str(exc))}")
                return None
            self.ledger.mark_active(entry.name, remote)
            return remote
        if decision.step is Step.CLOSE:
            self.ledger.mark_stopped(entry.name, note=decision.why)
        return None

    def _known_ids(self) -> set[str]:
        return {e.remote_id for e in self.ledger.entries("deployment") if e.remote_id}

    # ---- what was charged ------------------------------------------------------------------

    def settle_costs(self) -> int:
        """Replace estimates by what Basilica billed, where its usage history lists a deployment's UUID.

        Read in pages of at most 100 (the server refuses more). The public server's usage history
        lists active rentals only (`billing.rs` 133-146, `get_active_rentals_for_user`); if today's
        lists deployments too, their real cost lands in the ledger (`total_cost`, "billed").
        Returns rows settled."""
        waiting = {e.remote_id: e for e in self.ledger.entries("deployment", ["stopped"])
                   if e.remote_id and e.total_cost is None}
        settled = 0
        for page in range(USAGE_PAGES_MAX if waiting else 0):
            usage = self.gpu._call("read the usage history",
                                   lambda: self.gpu._sdk.list_usage_history(USAGE_PAGE, page * USAGE_PAGE))
            records = usage.get("rentals", []) if isinstance(usage, dict) else []
            for record in records:
                entry = waiting.pop(record.get("rental_id"), None)
                if entry is not None and record.get("current_cost") is not None:
                    self.ledger.mark_stopped(entry.name, total_cost=Decimal(str(record["current_cost"])),
                                             note="billed: from the usage history")
                    settled += 1
            total = usage.get("total_count", 0) if isinstance(usage, dict) else 0
            if not waiting or len(records) < USAGE_PAGE or (page + 1) * USAGE_PAGE >= int(total or 0):
                break
        return settled

    # ---- crash recovery ------------------------------------------------------------------

    def reclaim(self, owners: set[str], prefix: str) -> list[str]:
        """Delete everything this validator left behind: live ledger rows of `owners` first (by
        UUID, or settled as `recovery.py` says), then any listed deployment whose friendly name
        starts with `prefix` (only a server that lists names can show those)."""
        listing = self.list(priority=URGENT)
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
            self.gpu._call(f"delete deployment {d.id}", self.gpu._sdk.delete_deployment, d.id, priority=URGENT)
        except NotFound:
            pass
