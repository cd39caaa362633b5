"""The Basilica twin's state: offerings, rentals, deployments, injected faults, the request log.

One lock guards everything, so the twin's handlers on many threads stay consistent. See
`basilica_twin.py` for the server and the sources each behaviour follows.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from subnet.twins.basilica_deployments import (
    DEFAULT_NODES,
    Generation,
    Node,
    Status,
    TwinDeployment,
    detail_view,
    hosted_status,
    simulated_status,
    summary_view,
)
from subnet.twins.basilica_profile import Fate, ProductionProfile
from subnet.twins.deployment_host import ActorHost


def now_iso(ts: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if ts is None else ts))


def offering(id: str, gpu_type: str, hourly_rate_per_gpu: str, *, gpu_count: int = 1, is_spot: bool = False,
             provider: str = "cyan", region: str = "us-east-1", available: bool = True) -> dict:
    """One `nodes[]` entry exactly as the API sends it (rate per GPU, as a decimal string)."""
    return {"id": id, "provider": provider, "gpu_type": gpu_type, "gpu_count": gpu_count,
            "gpu_memory_gb_per_gpu": 16, "system_memory_gb": 32 * gpu_count, "vcpu_count": 8 * gpu_count,
            "region": region, "hourly_rate_per_gpu": str(hourly_rate_per_gpu), "availability": available,
            "is_spot": is_spot, "fetched_at": now_iso()}


# A catalogue in the shape of the real one: the five default-allowed boxes plus tempting ones that are not.
DEFAULT_OFFERINGS = [
    offering("v100-spot", "TESLA V100", "0.05", is_spot=True),
    offering("v100-od", "TESLA V100", "0.15"),
    offering("a4000-1x", "RTX-A4000", "0.16"),
    offering("a4000-2x", "RTX-A4000", "0.165", gpu_count=2),
    offering("a6000-spot", "RTX-A6000", "0.44", is_spot=True),
    offering("a6000-od", "RTX-A6000", "0.49"),
    offering("v100-4x", "TESLA V100", "0.15", gpu_count=4),
    offering("h100-1x", "H100", "2.10", provider="plum"),
]


@dataclass
class Fault:
    """One injected answer for one request. status None = no error, only the delay."""

    status: int | None = 500
    delay: float = 0.0
    message: str = "injected fault"
    plain: bool = False  # a plain-text body (like a proxy's) instead of Basilica's JSON error envelope
    after: bool = False  # do the work, THEN wait `delay` and answer (with the error, if any): an answer lost or late


class TwinState:
    """Everything the twin knows; one lock, so handlers on many threads stay consistent."""

    def __init__(self, token: str, offerings: list[dict] | None, balance: str, deployment_url: str | None,
                 ready_after_polls: int):
        self.lock = threading.RLock()
        self.token, self.balance = token, balance
        self.deployment_url = deployment_url or "http://{name}.twin.invalid"
        self.ready_after_polls = ready_after_polls
        self.offerings = list(DEFAULT_OFFERINGS if offerings is None else offerings)
        self.nodes: tuple[Node, ...] = DEFAULT_NODES
        self.host: ActorHost | None = None  # set: deployments really run (deployment_host.py)
        self.rate_limit: tuple[int, float] | None = None  # (requests, window seconds) per client IP or X-API-Key
        self.extra_admin: dict[str, Any] = {}  # path → callable, served under /_twin/
        self.state_model = "srv"  # or "operator": see basilica_deployments.Status.state
        self.generation = Generation()  # today's server; Generation.named("srv") for the public one's answers
        self.bill_deployments: str | None = None  # an hourly rate: deleted deployments show in /billing/usage
        # What happens to each new deployment: a test's fates by friendly-name prefix, else the profile's draw.
        self.profile: ProductionProfile | None = None
        self.fates: dict[str, Fate] = {}
        self.reset()

    def fate_for(self, name: str) -> Fate:
        with self.lock:
            found = next((f for prefix, f in self.fates.items() if name.startswith(prefix)), None)
            return found or (self.profile.draw() if self.profile else Fate())

    def reset(self) -> None:
        with self.lock:
            self.rentals: dict[str, dict] = {}
            self.deployments: dict[str, TwinDeployment] = {}
            self.ids_by_name: dict[str, str] = {}  # SRV `deployment_instance_mappings`: (user, name) → UUID
            self.billed: dict[str, tuple[str, str]] = {}  # deployment id → (hourly rate, cost) in usage records
            self.hits: dict[str, deque[float]] = {}
            self.ssh_key: dict | None = None
            self.faults: dict[str, deque[Fault]] = {}
            self.requests: list[dict] = []

    def next_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for route, queue in self.faults.items():
                want_method, _, want_path = route.partition(" ")
                if want_method not in ("*", method) or not queue:
                    continue
                if want_path == path or (want_path.endswith("*") and path.startswith(want_path[:-1])):
                    return queue.popleft()
        return None

    def over_rate_limit(self, client: str) -> bool:
        """A window per client (SRV `api/middleware/rate_limit.rs`: governor, default 60/min per client IP;
        that version rebuilt its limiter per request, so it never fired: off unless a test sets it)."""
        if self.rate_limit is None:
            return False
        limit, window = self.rate_limit
        now = time.monotonic()
        with self.lock:
            hits = self.hits.setdefault(client, deque())
            while hits and now - hits[0] > window:
                hits.popleft()
            if len(hits) >= limit:
                return True
            hits.append(now)
            return False

    def status(self, d: TwinDeployment) -> Status:
        if self.host is None:
            return simulated_status(d, self.ready_after_polls)
        now = time.monotonic()
        self.disrupt_if_due(d, now)
        return hosted_status(d, self.host.status(d.id), now)

    def disrupt_if_due(self, d: TwinDeployment, now: float) -> bool:
        """Note when its Actor first serves; end it as its fate says (the Actor really stops, so calls
        in flight fail as they would on a vanished pod). True when it happened now."""
        hosted = self.host.status(d.id) if self.host is not None else None
        if d.serving_at is None and hosted is not None and hosted.state == "running":
            d.serving_at = now
        due = d.fate.disruption
        if due is None or d.disrupted or d.serving_at is None or now < d.serving_at + due.after_ready_s:
            return False
        d.disrupted = due.kind
        d.logs.append(f"twin: pod {due.kind.replace('_', ' ')}")
        threading.Thread(target=self.host.stop, args=(d.id,), daemon=True).start()
        return True

    def tick(self) -> None:
        """Apply due disruptions even when nobody asks (the ticker thread of a twin with fates)."""
        now = time.monotonic()
        with self.lock:
            for d in list(self.deployments.values()):
                self.disrupt_if_due(d, now)

    def detail(self, d: TwinDeployment, with_token: bool = False) -> dict:
        return detail_view(d, self.status(d), with_token=with_token, state_model=self.state_model, gen=self.generation)

    def summary(self, d: TwinDeployment) -> dict:
        return summary_view(d, self.status(d), state_model=self.state_model, gen=self.generation)

    def events(self, d: TwinDeployment, limit: int) -> list[dict]:
        return list(self.status(d).events)[:limit]

    def add_rental(self, offer: dict, name: str | None = None, status: str = "running") -> dict:
        with self.lock:
            rid = str(uuid.uuid4())
            rate = Decimal(offer["hourly_rate_per_gpu"]) * offer["gpu_count"]
            self.rentals[rid] = {
                "name": name or f"rental-{len(self.rentals) + 1}", "rental_id": rid, "provider": offer["provider"],
                "provider_instance_id": f"inst-{rid[:8]}", "gpu_type": offer["gpu_type"],
                "gpu_count": offer["gpu_count"],
                "instance_type": f"{offer['gpu_count']}x-{offer['gpu_type']}", "location_code": offer["region"],
                "status": status, "ip_address": f"10.0.0.{len(self.rentals) + 2}", "hourly_cost": float(rate),
                "created_at": now_iso(), "stopped_at": None,
                "ssh_command": f"ssh ubuntu@10.0.0.{len(self.rentals) + 2}",
                "vcpu_count": offer["vcpu_count"], "system_memory_gb": offer["system_memory_gb"],
                "accumulated_cost": "0", "is_vip": False, "is_spot": offer["is_spot"],
                "offering_id": offer["id"], "_started": time.time(),
            }
            return self.rentals[rid]


class TwinError(Exception):
    """An `ApiError` (SRV `error.rs`): the HTTP status, the displayed message, and its code."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def invalid_request(message: str) -> TwinError:
    """`ApiError::InvalidRequest` (error.rs 65-67, 176): 400, "Invalid request: ...", BASILICA_API_INVALID_REQUEST."""
    return TwinError(400, f"Invalid request: {message}", "BASILICA_API_INVALID_REQUEST")


def _public(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.startswith("_") and k != "offering_id"}
