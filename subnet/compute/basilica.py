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
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import basilica

from subnet.compute.ledger import Ledger, LedgerEntry
from subnet.compute.policy import GpuPolicy, Offering, money, parse_rate
from subnet.compute.settings import BasilicaSettings, ConfigError

# CLI exit codes (documented in docs/operator.md).
EXIT_API = 1  # Basilica refused/failed otherwise (400, 409, unexpected answer)
EXIT_CONFIG = 2  # missing token, malformed BASILICA_* value, bad input
EXIT_NOTHING_AFFORDABLE = 3  # no allowed offering at or under the cap
EXIT_AUTH = 4  # 401/403
EXIT_NOT_FOUND = 5  # 404: unknown offering or rental
EXIT_UNAVAILABLE = 6  # 429/5xx/network/timeout after retries
EXIT_POLICY = 7  # offering outside the allowlist or over the cap
_INACTIVE = {"stopped", "stopping", "terminated", "terminating", "failed", "error", "deleted", "cancelled"}


class BasilicaError(Exception):
    """One-line, operator-facing failure with the CLI exit code it maps to."""

    exit_code = EXIT_API

    def __init__(self, message: str, *, retryable: bool = False, exit_code: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        if exit_code is not None:
            self.exit_code = exit_code


class AuthError(BasilicaError):
    exit_code = EXIT_AUTH


class NotFound(BasilicaError):
    exit_code = EXIT_NOT_FOUND


class Unavailable(BasilicaError):
    exit_code = EXIT_UNAVAILABLE


class PolicyRefused(BasilicaError):
    exit_code = EXIT_POLICY


class NothingAffordable(BasilicaError):
    exit_code = EXIT_NOTHING_AFFORDABLE


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


_DNS_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass
class DeploymentSpec:
    """What a Basilica runtime asks for. Deployments take no offering id and no price cap, so pick
    the GPU with the policy first and pin it here (`for_offering`)."""

    name: str  # instance_name: DNS-safe, also the ledger key
    image: str
    port: int = 8000
    env: dict[str, str] = field(default_factory=dict)
    cpu: str = "2"
    memory: str = "8Gi"
    gpu_count: int = 1
    gpu_models: list[str] = field(default_factory=list)
    min_gpu_memory_gb: int | None = None
    spot: bool | None = None
    ttl_seconds: int | None = 3600  # a forgotten deployment dies on its own
    public: bool = False  # design 5: never callable by strangers; callers use the share token/URL
    command: list[str] | None = None
    args: list[str] | None = None

    def __post_init__(self) -> None:
        if not _DNS_NAME.match(self.name):
            raise ConfigError(f"deployment name {self.name!r} must be lowercase letters, digits and dashes (max 63)")

    @classmethod
    def for_offering(cls, offering: Offering, *, name: str, image: str, **kw: Any) -> DeploymentSpec:
        return cls(name=name, image=image, gpu_count=offering.gpu_count, gpu_models=[offering.gpu_type],
                   spot=offering.is_spot, **kw)

    def sdk_kwargs(self) -> dict:
        return dict(
            instance_name=self.name, image=self.image, port=self.port, env=dict(self.env) or None, cpu=self.cpu,
            memory=self.memory, gpu_count=self.gpu_count or None, gpu_models=list(self.gpu_models) or None,
            min_gpu_memory_gb=self.min_gpu_memory_gb, spot=self.spot, ttl_seconds=self.ttl_seconds,
            public=self.public, command=self.command, args=self.args,
        )

    def summary(self) -> dict:
        # Ledger detail: env VALUES are left out on purpose (they may be secrets).
        return {"image": self.image, "port": self.port, "gpu_count": self.gpu_count, "gpu_models": self.gpu_models,
                "spot": self.spot, "public": self.public, "env_keys": sorted(self.env)}


@dataclass
class DeploymentInfo:
    name: str
    state: str
    url: str
    ready: int = 0
    desired: int = 0
    public: bool = True
    phase: str | None = None
    message: str | None = None
    image: str = ""
    share_url: str | None = field(default=None, repr=False)  # carries the token: keep out of logs
    share_token: str | None = field(default=None, repr=False)

    @property
    def is_ready(self) -> bool:
        return self.state in ("Active", "Running") and self.ready >= self.desired > 0

    @property
    def failed(self) -> bool:
        return self.state == "Failed"


def deployment_info(res: Any) -> DeploymentInfo:
    """From the SDK's DeploymentResponse or DeploymentSummary (the summary lacks some fields)."""
    return DeploymentInfo(
        name=res.instance_name, state=res.state, url=res.url, ready=res.replicas.ready,
        desired=res.replicas.desired, public=bool(res.public), phase=getattr(res, "phase", None),
        message=getattr(res, "message", None), image=getattr(res, "image", ""),
        share_url=getattr(res, "share_url", None), share_token=getattr(res, "share_token", None),
    )


def classify(exc: BaseException, op: str) -> BasilicaError:
    """Map an SDK exception to one clear line; never includes the token."""
    text = _first_line(exc.args[0] if exc.args else exc)
    if isinstance(exc, BasilicaError):
        return exc
    if isinstance(exc, TimeoutError):
        return Unavailable(f"Basilica did not answer in time while trying to {op} ({text})", retryable=True)
    if isinstance(exc, PermissionError):
        if text.startswith("Authentication error"):
            return AuthError(f"Basilica rejected the API token while trying to {op} (401): check BASILICA_API_TOKEN")
        return AuthError(f"Basilica refused to {op} (403: {text}): check the scopes of BASILICA_API_TOKEN")
    if isinstance(exc, KeyError):
        return NotFound(f"Basilica could not {op}: {text.removeprefix('Not found: ')} (404)")
    if isinstance(exc, ValueError):
        return BasilicaError(f"Basilica rejected the request to {op} (400): {text}")
    if isinstance(exc, ConnectionError):
        if "decoding response body" in text:
            return BasilicaError(f"Basilica's answer to {op} is not what this SDK expects: {text}")
        return Unavailable(f"cannot reach Basilica to {op}: {_short_net(text)}", retryable=True)
    if isinstance(exc, RuntimeError):
        return _classify_runtime(text, op)
    return BasilicaError(f"unexpected error while trying to {op}: {type(exc).__name__}: {text}")


def _classify_runtime(text: str, op: str) -> BasilicaError:
    if text.startswith("Conflict"):
        return BasilicaError(f"Basilica refused to {op} (409): {text.removeprefix('Conflict: ')}")
    if text == "Rate limit exceeded":
        return Unavailable(f"Basilica rate-limited {op} (429); try again shortly", retryable=True)
    status = re.match(r"Request failed with status (\d{3})", text)
    if status and status.group(1).startswith("5"):
        return Unavailable(f"Basilica failed to {op} ({status.group(1)}): {text}", retryable=True)
    if status:
        return BasilicaError(f"Basilica refused to {op} ({status.group(1)}): {text}")
    # A JSON error body hides the status: could be a 5xx, so retry (bounded), then report as is.
    return BasilicaError(f"Basilica failed to {op}: {text}", retryable=True)


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
            offerings.append(Offering(o.id, o.gpu_type, int(o.gpu_count), bool(o.is_spot), rate, o.provider, o.region))
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
            if entry and entry.live:  # the ledger thought it was running: close the row, keep the note
                self.ledger.mark_stopped(entry.name, note="not found remotely when stopped")
            raise
        if entry:
            self.ledger.mark_stopped(entry.name, total_cost=Decimal(str(res.total_cost)))
        return StopOutcome(res.rental_id, res.status, res.duration_hours, res.total_cost)

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

    # ---- deployments (for the Basilica runtime) ------------------------------------------

    def create_deployment(
        self, spec: DeploymentSpec, *, owner: str = "", hourly_rate: Decimal | None = None
    ) -> DeploymentInfo:
        """Ledger row first, then POST /deployments (idempotent by name, so retries are safe)."""
        ledger = self._require_ledger()
        ledger.begin("deployment", spec.name, owner=owner, gpu_type=",".join(spec.gpu_models) or None,
                     gpu_count=spec.gpu_count, is_spot=spec.spot, hourly_rate=hourly_rate, detail=spec.summary())
        try:
            res = self._call(f"create deployment {spec.name}", lambda: self._sdk.create_deployment(**spec.sdk_kwargs()))
        except Exception as exc:
            ledger.mark_failed(spec.name, str(exc) or type(exc).__name__)
            raise
        ledger.mark_active(spec.name, res.instance_name)
        return deployment_info(res)

    def get_deployment(self, name: str) -> DeploymentInfo:
        return deployment_info(self._call(f"read deployment {name}", self._sdk.get_deployment, name))

    def list_deployments(self) -> list[DeploymentInfo]:
        res = self._call("list deployments", self._sdk.list_deployments)
        return [deployment_info(d) for d in res.deployments]

    def deployment_logs(self, name: str, tail: int | None = None) -> str:
        return self._call(f"read logs of {name}", lambda: self._sdk.get_deployment_logs(name, False, tail))

    def delete_deployment(self, name: str) -> str:
        """Delete and close the ledger row; a deployment that is already gone counts as deleted."""
        try:
            state = self._call(f"delete deployment {name}", self._sdk.delete_deployment, name).state
        except NotFound:
            state = "gone"
        entry = self.ledger.get(name) if self.ledger else None
        if entry and entry.live:
            self.ledger.mark_stopped(name, note=None if state != "gone" else "already gone when deleted")
        return state

    def reclaim(self, owner: str | None = None) -> list[str]:
        """Stop/delete everything the ledger says is live (optionally only `owner`'s): crash recovery."""
        done = []
        for entry in self._require_ledger().live():
            if owner is not None and entry.owner != owner:
                continue
            if entry.kind == "deployment":
                self.delete_deployment(entry.name)
            else:
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

    def _call(self, op: str, fn: Callable, *args, recover: Callable[[], Any] | None = None) -> Any:
        """Run an SDK call under a deadline; retry 429/5xx/network with doubling backoff (bounded).

        `recover` runs before each retry of a non-idempotent call: if it finds the result of the
        failed attempt (e.g. the rental exists under our name), that result is used instead.
        """
        attempts = self.settings.retries
        for attempt in range(1, attempts + 1):
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


def _first_line(value: object) -> str:
    lines = str(value).strip().splitlines()
    return lines[0][:300] if lines else ""


def _short_net(text: str) -> str:
    # reqwest's text is long; the URL and the final cause are what an operator needs.
    cause = text.rsplit(": ", 1)[-1]
    url = re.search(r"url \(([^)]+)\)", text)
    return f"{cause} ({url.group(1).split('?')[0]})" if url else cause
