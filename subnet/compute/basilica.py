"""A thin client over the real `basilica` SDK: cheapest allowed GPU, rentals, deployments, ledger.

What the SDK (0.36.8) does, and why this wrapper exists:
- HTTP errors arrive as builtins: 400 ValueError, 401/403 PermissionError, 404 KeyError,
  409/429/5xx (and 402, 422...) RuntimeError, network failure ConnectionError. With a JSON error body
  the RuntimeError text is the server's message only (no status), so an unrecognised RuntimeError is
  treated as possibly transient and retried (bounded). A body the SDK cannot parse is also a
  ConnectionError ("error decoding response body"): a protocol mismatch, never retried.
- The SDK's own timeout is 20 minutes, so each call runs under our deadline (`BASILICA_TIMEOUT`).
- Secure-cloud rentals have no "get" call; status is looked up in the rental list.
Every rental/deployment gets a ledger row before the create call (see `ledger.py`); we send the
row's name to Basilica, so after an ambiguous failure we can look the name up instead of double-renting.
"""

from __future__ import annotations

import queue
import secrets
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import basilica

from subnet.compute.errors import BasilicaError, NotFound, NothingAffordable, PolicyRefused, classify
from subnet.compute.ledger import Ledger, LedgerEntry
from subnet.compute.pacer import NORMAL, Pacer
from subnet.compute.policy import GpuPolicy, Offering, money, parse_rate
from subnet.compute.settings import BasilicaSettings, ConfigError

_INACTIVE = {"stopped", "stopping", "terminated", "terminating", "failed", "error", "deleted", "cancelled"}

@dataclass
class RemoteRental:
    rental_id: str
    name: str
    status: str
    gpu_type: str = ""
    gpu_count: int = 0
    is_spot: bool = False
    hourly_cost: float = 0.0  # what Basilica charges for the box per hour
    provider: str = ""
    region: str = ""
    ip_address: str | None = None
    ssh_command: str | None = None
    created_at: str | None = None
    stopped_at: str | None = None
    accumulated_cost: str | None = None

    @property
    def active(self) -> bool:
        return self.stopped_at is None and self.status.lower() not in _INACTIVE

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items()} | {"active": self.active}


@dataclass
class RentOutcome:
    offering: Offering
    dry_run: bool
    rental: RemoteRental | None = None
    entry: LedgerEntry | None = None


@dataclass
class StopOutcome:
    rental_id: str
    status: str
    duration_hours: float | None
    total_cost: float | None
    note: str | None = None


class BasilicaGPUClient:
    def __init__(
        self,
        settings: BasilicaSettings,
        *,
        policy: GpuPolicy | None = None,
        ledger: Ledger | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self.policy = policy or settings.policy()
        self.ledger = ledger
        self._sleep = sleep
        self._sdk = basilica.BasilicaClient(base_url=settings.api_url, api_key=settings.token())
        self._pacer = Pacer(settings.requests_per_minute, settings.request_burst)

    # ---- offerings -----------------------------------------------------------------------

    def list_offerings(self) -> list[Offering]:
        """Every available offering, unfiltered (rates parsed from the API's per-GPU strings)."""
        raw = self._call("list GPU offerings", self._sdk.list_secure_cloud_gpus)
        offerings = []
        for o in raw:
            try:
                rate = parse_rate(o.hourly_rate)
            except ValueError:
                continue  # an unpriceable offering can never be proven under the cap
            offerings.append(Offering(o.id, o.gpu_type, int(o.gpu_count), bool(o.is_spot), rate, o.provider, o.region,
                                      getattr(o, "gpu_memory_gb_per_gpu", None)))
        return offerings

    def list_cheap_gpus(self) -> list[Offering]:
        return self.policy.allowed_offerings(self.list_offerings())

    # ---- rentals -------------------------------------------------------------------------

    def rent(self, offering_id: str, *, dry_run: bool = False, owner: str = "cli") -> RentOutcome:
        offerings = self.list_offerings()
        offering = next((o for o in offerings if o.id == offering_id), None)
        if offering is None:
            raise NotFound(f"offering {offering_id!r} is not listed as available; see `subnet gpus list`")
        reason = self.policy.refusal(offering)
        if reason:
            raise PolicyRefused(f"refusing to rent {offering_id}: {reason}")
        return self._start(offering, dry_run, owner)

    def rent_cheapest(self, *, dry_run: bool = False, owner: str = "cli") -> RentOutcome:
        cheapest = self.policy.cheapest(self.list_offerings())
        if cheapest is None:
            raise NothingAffordable(
                f"no allowed GPU offering is available at or under BASILICA_MAX_HOURLY_RATE "
                f"{money(self.policy.max_hourly_rate)}/h (allowed: {self.policy.describe_allowlist()})"
            )
        return self._start(cheapest, dry_run, owner)

    def _start(self, offering: Offering, dry_run: bool, owner: str) -> RentOutcome:
        if dry_run:
            return RentOutcome(offering, dry_run=True)
        ledger = self._require_ledger()
        key_id = self.ensure_ssh_key()
        name = new_name("rental")
        ledger.begin("rental", name, owner=owner, offering_id=offering.id, gpu_type=offering.gpu_type,
                     gpu_count=offering.gpu_count, is_spot=offering.is_spot, hourly_rate=offering.box_hourly_rate)
        try:
            rental = self._call(
                f"start a rental of {offering.id}",
                lambda: _rental_from_start(self._sdk.start_secure_cloud_rental(offering.id, key_id, name), offering),
                recover=lambda: self._find_rental_by_name(name),
            )
        except Exception as exc:  # Ctrl-C is not caught: the row stays 'starting' (we do not know)
            ledger.mark_failed(name, str(exc) or type(exc).__name__)
            raise
        ledger.mark_active(name, rental.rental_id)
        return RentOutcome(offering, dry_run=False, rental=rental, entry=ledger.get(name))

    def stop(self, rental_id: str) -> StopOutcome:
        entry = self.ledger.find(rental_id, "rental") if self.ledger else None
        remote_ref = (entry.remote_id or entry.name) if entry else rental_id
        try:
            res = self._call(f"stop rental {rental_id}", self._sdk.stop_secure_cloud_rental, remote_ref)
        except NotFound:
            # The ledger thought it was running: close the row only if the rental list proves it is not.
            if entry and entry.live and not self._still_running(entry):
                self.ledger.mark_stopped(entry.name, note="not found remotely when stopped")
            raise
        if entry:
            self.ledger.mark_stopped(entry.name, total_cost=Decimal(str(res.total_cost)))
        return StopOutcome(res.rental_id, res.status, res.duration_hours, res.total_cost)

    def _still_running(self, entry: LedgerEntry) -> bool:
        refs = {entry.remote_id, entry.name} - {None}
        return any(r.active and (r.rental_id in refs or r.name in refs) for r in self.list_rentals())

    def list_rentals(self) -> list[RemoteRental]:
        res = self._call("list rentals", self._sdk.list_secure_cloud_rentals)
        return [_rental_from_item(item) for item in res.rentals]

    def rental_status(self, rental_id: str) -> RemoteRental:
        for rental in self.list_rentals():
            if rental_id in (rental.rental_id, rental.name):
                return rental
        raise NotFound(f"no rental {rental_id!r} on this Basilica account")

    def _find_rental_by_name(self, name: str) -> RemoteRental | None:
        try:
            return next((r for r in self.list_rentals() if r.name == name and r.active), None)
        except BasilicaError:
            return None

    # ---- account -------------------------------------------------------------------------

    def balance(self) -> dict:
        res = self._call("read the balance", self._sdk.get_balance)
        return {"balance": float(Decimal(str(res.get("balance", "0")))), "last_updated": res.get("last_updated")}

    def ensure_ssh_key(self, public_key_path: Path | None = None, name: str = "subnet") -> str:
        """The id of the account's SSH key, registering ours when the account has none."""
        key = self._call("read the SSH key", self._sdk.get_ssh_key)
        if key is not None:
            return key.id
        path = Path(public_key_path or self.settings.ssh_public_key).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"no SSH key registered with Basilica and {path} does not exist: "
                "run `ssh-keygen -t ed25519` or set BASILICA_SSH_PUBLIC_KEY"
            )
        public_key = path.read_text().strip()
        return self._call("register the SSH key", self._sdk.register_ssh_key, name, public_key).id

    def reclaim(self, owner: str | None = None) -> list[str]:
        """Stop every rental the ledger says is live (optionally only `owner`'s): crash recovery.
        Deployments are `DeploymentClient.reclaim`'s (it builds on this class, not the reverse)."""
        done = []
        for entry in self._require_ledger().live("rental"):
            if owner is not None and entry.owner != owner:
                continue
            try:
                self.stop(entry.remote_id or entry.name)
            except NotFound:
                pass  # stop() already closed the row
            done.append(entry.name)
        return done

    # ---- plumbing ------------------------------------------------------------------------

    def _require_ledger(self) -> Ledger:
        if self.ledger is None:
            raise ConfigError("this operation spends money and needs a ledger (state DB path)")
        return self.ledger

    def _call(self, op: str, fn: Callable, *args, recover: Callable[[], Any] | None = None,
              attempts: int | None = None, paced: bool = True, priority: int = NORMAL) -> Any:
        """Run an SDK call under a deadline; retry 429/5xx/network with doubling backoff (bounded).

        `recover` runs before each retry of a non-idempotent call: if it finds the result of the
        failed attempt (e.g. the rental exists under our name), that result is used instead.
        `priority`: `pacer.URGENT` for deletes and the reads that decide one (they go first).
        """
        attempts = attempts or self.settings.retries
        for attempt in range(1, attempts + 1):
            if paced:  # unpaced: the caller took its token already (see Pacer.try_acquire)
                self._pacer.acquire(priority)
            try:
                return _with_deadline(lambda: fn(*args), self.settings.timeout)
            except Exception as exc:  # noqa: BLE001 - SDK raises builtins; classify() sorts them
                err = classify(exc, op)
            found = recover() if recover and err.retryable else None
            if found is not None:  # the failed attempt did the work after all
                return found
            if not err.retryable or attempt == attempts:
                if err.retryable and attempts > 1:
                    err = type(err)(f"{err} (gave up after {attempts} attempts)", exit_code=err.exit_code)
                raise err
            self._sleep(min(self.settings.backoff * 2 ** (attempt - 1), 30.0))
        raise AssertionError("unreachable")


def _with_deadline(fn: Callable[[], Any], timeout: float) -> Any:
    """Run `fn` in a daemon thread (the SDK call releases the GIL) and stop waiting after `timeout`."""
    box: queue.Queue = queue.Queue(maxsize=1)

    def run() -> None:
        try:
            box.put((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box.put((False, exc))

    threading.Thread(target=run, daemon=True, name="basilica-call").start()
    try:
        ok, value = box.get(timeout=timeout)
    except queue.Empty:
        raise TimeoutError(f"no answer within {timeout:g}s") from None
    if ok:
        return value
    raise value


def _rental_from_start(res: Any, offering: Offering) -> RemoteRental:
    # The start answer has no GPU fields: they come from the offering we asked for.
    return RemoteRental(
        rental_id=res.rental_id, name=res.name, status=res.status, gpu_type=offering.gpu_type,
        gpu_count=offering.gpu_count, is_spot=bool(res.is_spot), hourly_cost=float(res.hourly_cost),
        provider=res.provider, region=offering.region, ip_address=res.ip_address, ssh_command=res.ssh_command,
    )


def _rental_from_item(item: Any) -> RemoteRental:
    return RemoteRental(
        rental_id=item.rental_id, name=item.name, status=item.status, gpu_type=item.gpu_type,
        gpu_count=int(item.gpu_count), is_spot=bool(item.is_spot), hourly_cost=float(item.hourly_cost),
        provider=item.provider, region=item.location_code or "", ip_address=item.ip_address,
        ssh_command=item.ssh_command, created_at=item.created_at, stopped_at=item.stopped_at,
        accumulated_cost=item.accumulated_cost,
    )


def new_name(kind: str) -> str:
    """Client-chosen, unique, Basilica-safe (lowercase, digits, dashes; < 64 chars)."""
    return f"subnet-{kind}-{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"
