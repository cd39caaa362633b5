"""A local Basilica twin: the paths and JSON of the real API, so the real `basilica` SDK talks to it.

Speaks (all behind `Authorization: Bearer <token>`):
  GET  /v2/secure-cloud/gpu-prices?available_only=true   -> {"nodes": [...], "count": n}
  GET  /v2/secure-cloud/rentals                          -> {"rentals": [...], "total_count": n}
  POST /v2/secure-cloud/rentals/start  {offering_id, ssh_public_key_id, name?}
  POST /v2/secure-cloud/rentals/{id-or-name}/stop
  GET|POST|DELETE /ssh-keys        GET /billing/balance   GET /health
  POST /deployments (camelCase)    GET /deployments[/{name}[/logs]]    DELETE /deployments/{name}
Wire facts the SDK enforces: an offering's price is `hourly_rate_per_gpu`, a decimal STRING (the SDK
exposes it as `hourly_rate`); errors are `{"error": {"code", "message", "timestamp", "retryable"}}`.

Test controls (no auth, loopback only): the Python methods of `BasilicaTwin` (`fault`, `requests`,
`set_offerings`, `add_rental`, `register_ssh_key`, `rentals`, `deployments`), or over HTTP for the
subprocess mode: GET /_twin/requests, GET /_twin/deployments, POST /_twin/faults {"route", "faults":
[{"status", "delay", "message", "plain", "after", "times"}]}, PUT /_twin/offerings [...],
POST /_twin/rentals {"offering_id", "name", "status"}, PATCH /_twin/config {"token", "balance",
"deployment_url", "ready_after_polls"}, POST /_twin/reset. Faults queue per route ("METHOD /path",
`*` wildcards for the method or a path suffix) and are used once each, in order.

A deployment reports `url` = `deployment_url` (may contain `{name}`; default an unresolvable
`http://{name}.twin.invalid`): point it at a local server to exercise a runtime end to end. Private
deployments (`public: false`) get a share token and `shareUrl` = url + `?token=...`.

Caveat: the SDK's `delete_ssh_key()` holds the GIL while it waits, so against an IN-PROCESS twin it
deadlocks; every other call releases the GIL. Use the subprocess mode for that one call.

CLI: `python -m subnet.twins.basilica_twin --port 8787` (see --help).
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import threading
import time
import uuid
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

from subnet.twins.basilica_deployments import (
    DEFAULT_NODES,
    Node,
    Status,
    TwinDeployment,
    detail_view,
    hosted_status,
    new_deployment,
    simulated_status,
    summary_view,
    validate,

)
from subnet.twins.deployment_host import ActorHost, DeploymentFront

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# SRV `crates/basilica-api/src/error.rs` `impl IntoResponse`: codes, and `retryable` true only for the
# transient kinds (timeouts, upstream/validator communication, service unavailable) — never for 429.
_CODES = {400: "BAD_REQUEST", 401: "AUTH_ERROR", 402: "INSUFFICIENT_BALANCE", 403: "AUTHZ_ERROR",
          404: "NOT_FOUND", 408: "TIMEOUT", 409: "CONFLICT", 429: "RATE_LIMIT", 500: "INTERNAL_ERROR",
          502: "HTTP_CLIENT_ERROR", 503: "SERVICE_UNAVAILABLE", 504: "TIMEOUT"}


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
    after: bool = False  # do the work, THEN answer with the error: an answer lost on the way back


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
        self.rate_limit: tuple[int, float] | None = None  # (requests, window seconds) per API token
        self.extra_admin: dict[str, Any] = {}  # path → callable, served under /_twin/
        self.state_model = "srv"  # or "operator": see basilica_deployments.Status.state
        self.bill_deployments: str | None = None  # an hourly rate: deleted deployments show in /billing/usage
        self.reset()

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
        return hosted_status(d, self.host.status(d.id), time.monotonic() - d.born)

    def detail(self, d: TwinDeployment, with_token: bool = False) -> dict:
        return detail_view(d, self.status(d), with_token=with_token, state_model=self.state_model)

    def summary(self, d: TwinDeployment) -> dict:
        return summary_view(d, self.status(d), state_model=self.state_model)

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
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _public(record: dict) -> dict:
    return {k: v for k, v in record.items() if not k.startswith("_") and k != "offering_id"}


# ---- API routes: (method, path regex, handler(state, match, query, body) -> (status, payload)) ------


def _gpu_prices(st: TwinState, m, q: dict, body) -> tuple[int, Any]:
    nodes = [o for o in st.offerings if o["availability"] or q.get("available_only") != "true"]
    if q.get("spot_only") == "true":
        nodes = [o for o in nodes if o["is_spot"]]
    if q.get("exclude_spot") == "true":
        nodes = [o for o in nodes if not o["is_spot"]]
    return 200, {"nodes": nodes, "count": len(nodes)}


def _list_rentals(st: TwinState, m, q, body) -> tuple[int, Any]:
    rentals = [_public(r) for r in st.rentals.values()]
    return 200, {"rentals": rentals, "total_count": len(rentals)}


def _start_rental(st: TwinState, m, q, body: dict) -> tuple[int, Any]:
    offer = next((o for o in st.offerings if o["id"] == body.get("offering_id") and o["availability"]), None)
    if offer is None:
        raise TwinError(404, f"Offering {body.get('offering_id')} not found or unavailable")
    if not st.ssh_key or body.get("ssh_public_key_id") != st.ssh_key["id"]:
        raise TwinError(400, "ssh_public_key_id does not name your registered SSH key")
    name = body.get("name")
    if name and any(r["name"] == name and r["status"] == "running" for r in st.rentals.values()):
        raise TwinError(409, f"A rental named {name} already exists")
    r = st.add_rental(offer, name=name)
    return 200, {"name": r["name"], "rental_id": r["rental_id"], "deployment_id": f"dep-{r['rental_id'][:8]}",
                 "provider": r["provider"], "status": r["status"], "ip_address": r["ip_address"],
                 "ssh_command": r["ssh_command"], "hourly_cost": r["hourly_cost"], "is_spot": r["is_spot"]}


def _stop_rental(st: TwinState, m, q, body) -> tuple[int, Any]:
    ref = m.group(1)
    r = st.rentals.get(ref) or next((r for r in st.rentals.values() if r["name"] == ref), None)
    if r is None or r["status"] != "running":
        raise TwinError(404, f"Rental {ref} not found")
    hours = (time.time() - r["_started"]) / 3600
    r.update(status="stopped", stopped_at=now_iso(), accumulated_cost=f"{r['hourly_cost'] * hours:.6f}")
    return 200, {"name": r["name"], "rental_id": r["rental_id"], "status": "stopped",
                 "duration_hours": hours, "total_cost": round(r["hourly_cost"] * hours, 6)}


def _get_ssh_key(st: TwinState, m, q, body) -> tuple[int, Any]:
    return 200, st.ssh_key


def _register_ssh_key(st: TwinState, m, q, body: dict) -> tuple[int, Any]:
    if st.ssh_key:
        raise TwinError(409, "An SSH key is already registered")
    if not str(body.get("public_key", "")).startswith(("ssh-", "ecdsa-")):
        raise TwinError(400, "public_key is not an OpenSSH public key")
    st.ssh_key = {"id": str(uuid.uuid4()), "user_id": "twin-user", "name": body.get("name", ""),
                  "public_key": body["public_key"], "created_at": now_iso(), "updated_at": now_iso()}
    return 201, st.ssh_key


def _delete_ssh_key(st: TwinState, m, q, body) -> tuple[int, Any]:
    st.ssh_key = None
    return 204, b""


def _balance(st: TwinState, m, q, body) -> tuple[int, Any]:
    return 200, {"balance": st.balance, "last_updated": now_iso()}


def _usage(st: TwinState, m, q, body) -> tuple[int, Any]:
    """SRV `api/routes/billing.rs`: rental-centric usage records. Deployments appear only when a test sets
    `bill_deployments` (whether today's server bills them here is open)."""
    records = [{"rental_id": r["rental_id"], "node_id": r["provider_instance_id"], "status": r["status"],
                "hourly_rate": str(r["hourly_cost"]), "current_cost": r["accumulated_cost"],
                "start_time": r["created_at"], "last_updated": now_iso()} for r in st.rentals.values()]
    records += [{"rental_id": dep_id, "node_id": "twin-node", "status": "stopped", "hourly_rate": str(rate),
                 "current_cost": str(cost), "start_time": now_iso(), "last_updated": now_iso()}
                for dep_id, (rate, cost) in st.billed.items()]
    offset, limit = int(q.get("offset", 0) or 0), int(q.get("limit", 50) or 50)
    return 200, {"rentals": records[offset:offset + limit], "total_count": len(records)}


def _health(st: TwinState, m, q, body) -> tuple[int, Any]:
    return 200, {"status": "healthy", "version": "twin", "timestamp": now_iso(),
                 "healthy_validators": 1, "total_validators": 1}


def _create_deployment(st: TwinState, m, q, body: dict) -> tuple[int, Any]:
    """SRV handlers.rs `create_deployment`: the name maps to a UUID stable per (user, name); a live
    deployment of that name is returned as it is (200, no second deployment, new body ignored); a
    deleted one is reactivated under the same UUID (200); otherwise a new one (201)."""
    problem = validate(body)
    if problem:
        raise TwinError(400, problem)
    known = st.ids_by_name.get(body["instanceName"])
    if known in st.deployments:
        return 200, st.detail(st.deployments[known])
    d = new_deployment(body, st.deployment_url, st.nodes, now_iso(), dep_id=known)
    st.deployments[d.id] = d
    st.ids_by_name[d.friendly_name] = d.id
    if st.host is not None and d.node is not None:
        st.host.start(d.id, body["image"])
    return (200 if known else 201), st.detail(d, with_token=True)


def _deployment(st: TwinState, dep_id: str) -> TwinDeployment:
    if dep_id not in st.deployments:  # by UUID only: a friendly name is not an id
        raise TwinError(404, f"Deployment {dep_id} not found")
    return st.deployments[dep_id]


def _get_deployment(st: TwinState, m, q, body) -> tuple[int, Any]:
    d = _deployment(st, m.group(1))
    d.polls += 1
    return 200, st.detail(d)


def _list_deployments(st: TwinState, m, q, body) -> tuple[int, Any]:
    views = [st.summary(d) for d in st.deployments.values()]
    return 200, {"deployments": views, "total": len(views)}


def _delete_deployment(st: TwinState, m, q, body) -> tuple[int, Any]:
    d = st.deployments.pop(_deployment(st, m.group(1)).id)
    if st.bill_deployments:
        hours = (time.monotonic() - d.born) / 3600
        st.billed[d.id] = (st.bill_deployments, f"{float(st.bill_deployments) * hours:.6f}")
    if st.host is not None:
        threading.Thread(target=st.host.stop, args=(d.id,), daemon=True).start()
    return 200, {"instanceName": d.id, "state": "Terminating", "message": "Deployment deletion initiated"}


def _regenerate_share_token(st: TwinState, m, q, body) -> tuple[int, Any]:
    d = _deployment(st, m.group(1))
    if not d.private:
        raise TwinError(400, "Deployment is public: it has no share token")
    d.share_token = secrets.token_urlsafe(16)
    return 200, {"token": d.share_token, "shareUrl": f"{d.url}?token={d.share_token}"}


def _deployment_logs(st: TwinState, m, q, body) -> tuple[int, Any]:
    d = _deployment(st, m.group(1))
    hosted = st.host.status(d.id) if st.host is not None else None
    lines = d.logs + ([hosted.error] if hosted is not None and hosted.error else [])
    tail = int(q.get("tail", 0) or 0)
    return 200, "\n".join(lines[-tail:] if tail else lines) + "\n"


_SEG = r"([^/]+)"
ROUTES = [
    ("GET", r"/health", _health),
    ("GET", r"/v2/secure-cloud/gpu-prices", _gpu_prices),
    ("GET", r"/v2/secure-cloud/rentals", _list_rentals),
    ("POST", r"/v2/secure-cloud/rentals/start", _start_rental),
    ("POST", rf"/v2/secure-cloud/rentals/{_SEG}/stop", _stop_rental),
    ("GET", r"/ssh-keys", _get_ssh_key),
    ("POST", r"/ssh-keys", _register_ssh_key),
    ("DELETE", r"/ssh-keys", _delete_ssh_key),
    ("GET", r"/billing/balance", _balance),
    ("GET", r"/billing/usage", _usage),
    ("POST", r"/deployments", _create_deployment),
    ("GET", r"/deployments", _list_deployments),
    ("GET", rf"/deployments/{_SEG}", _get_deployment),
    ("DELETE", rf"/deployments/{_SEG}", _delete_deployment),
    ("GET", rf"/deployments/{_SEG}/logs", _deployment_logs),
    ("POST", rf"/deployments/{_SEG}/share-token", _regenerate_share_token),
]


# ---- HTTP plumbing -----------------------------------------------------------------------------


def _error_body(status: int, message: str, code: str | None = None) -> dict:
    return {"error": {"code": code or f"BASILICA_API_{_CODES.get(status, 'ERROR')}", "message": message,
                      "timestamp": now_iso(), "retryable": status in (408, 502, 503, 504)}}


class _Handler(BaseHTTPRequestHandler):
    server_version = "basilica-twin/1"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _serve(self) -> None:
        st: TwinState = self.server.state  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        path = url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self._send(400, _error_body(400, "request body is not JSON"))
        if path.startswith("/_twin/"):
            return self._send(*_admin(st, self.command, path, body))
        with st.lock:
            st.requests.append({"method": self.command, "path": path, "query": query, "body": body,
                                "at": time.time()})
        fault = st.next_fault(self.command, path)
        if fault:
            time.sleep(fault.delay)
        if fault and fault.status and not fault.after:
            return self._send(fault.status, fault.message if fault.plain else _error_body(fault.status, fault.message))
        auth = self.headers.get("Authorization") or ""
        if path != "/health" and auth != f"Bearer {st.token}":
            code = "BASILICA_API_AUTH_MISSING" if not auth else "BASILICA_API_AUTH_INVALID"
            return self._send(401, _error_body(401, "Invalid or missing API token", code))
        if st.over_rate_limit(auth):  # SRV error.rs: RateLimitExceeded → 429, retryable false, no Retry-After
            return self._send(429, _error_body(429, "Too many requests. Please try again later.",
                                                "BASILICA_API_RATE_LIMIT"))
        answer = self._route(st, path, query, body)
        if fault and fault.status and fault.after:
            answer = fault.status, fault.message if fault.plain else _error_body(fault.status, fault.message)
        self._send(*answer)

    def _route(self, st: TwinState, path: str, query: dict, body: Any) -> tuple[int, Any]:
        for method, pattern, handler in ROUTES:
            match = re.fullmatch(pattern, path)
            if match and method == self.command:
                try:
                    with st.lock:
                        return handler(st, match, query, body)
                except TwinError as exc:
                    return exc.status, _error_body(exc.status, exc.message)
                except Exception as exc:  # noqa: BLE001 - a bad test fixture must not kill the connection
                    return 500, _error_body(500, f"twin bug or bad fixture: {type(exc).__name__}: {exc}")
        return 404, _error_body(404, f"No route for {self.command} {path}")

    def _send(self, status: int, payload: Any) -> None:
        if isinstance(payload, bytes):
            data, ctype = payload, "application/json"
        elif isinstance(payload, str):
            data, ctype = payload.encode(), "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(payload).encode(), "application/json"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


def _admin(st: TwinState, method: str, path: str, data: Any) -> tuple[int, Any]:
    with st.lock:
        if (method, path) == ("GET", "/_twin/requests"):
            return 200, st.requests
        if (method, path) == ("GET", "/_twin/deployments"):
            return 200, {i: st.detail(d) for i, d in st.deployments.items()}
        if (method, path) == ("POST", "/_twin/faults"):
            queue = st.faults.setdefault(data["route"], deque())
            for spec in data["faults"]:
                spec = dict(spec)
                queue.extend(Fault(**spec) for _ in range(int(spec.pop("times", 1))))
            return 200, {"queued": len(st.faults[data["route"]])}
        if (method, path) == ("PUT", "/_twin/offerings"):
            st.offerings = list(data)
            return 200, {"count": len(st.offerings)}
        if (method, path) == ("POST", "/_twin/rentals"):
            offer = next((o for o in st.offerings if o["id"] == data["offering_id"]), None)
            if offer is None:
                return 404, _error_body(404, f"no offering {data['offering_id']}")
            return 201, _public(st.add_rental(offer, data.get("name"), data.get("status", "running")))
        if (method, path) == ("PATCH", "/_twin/config"):
            for key in ("token", "balance", "deployment_url", "ready_after_polls", "state_model"):
                if key in data:
                    setattr(st, key, data[key])
            return 200, {"ok": True}
        if method == "GET" and path in st.extra_admin:  # a test's or benchmark's own read-out
            return 200, st.extra_admin[path]()
        if (method, path) == ("POST", "/_twin/reset"):
            st.reset()
            return 200, {"ok": True}
    return 404, _error_body(404, f"No twin control {method} {path}")


class BasilicaTwin:
    """The twin on a loopback port, in this process. `with BasilicaTwin() as twin:` → `twin.url`."""

    def __init__(self, *, token: str = "twin-token", offerings: list[dict] | None = None, balance: str = "25.00",
                 deployment_url: str | None = None, ready_after_polls: int = 0, host: str = "127.0.0.1", port: int = 0,
                 actor_host: ActorHost | None = None, rate_limit: tuple[int, float] | None = None):
        """`actor_host`: run each deployment's image for real behind a token-checking front."""
        if host not in LOOPBACK:
            raise ValueError(f"the twin serves loopback only, not {host!r}")
        self.state = TwinState(token, offerings, balance, deployment_url, ready_after_polls)
        self.state.rate_limit = rate_limit
        self._addr = (host, port)
        self._server: ThreadingHTTPServer | None = None
        self._front: DeploymentFront | None = None
        if actor_host is not None:
            self.state.host = actor_host
            self._front = DeploymentFront(self._front_lookup, host=host)
            self.state.deployment_url = self._front.url_for("{name}")

    def _front_lookup(self, dep_id: str) -> tuple[str | None, str | None] | None:
        with self.state.lock:
            d = self.state.deployments.get(dep_id)
            if d is None:
                return None
            hosted = self.state.host.status(dep_id) if self.state.host else None
            return d.share_token if d.private else None, hosted.url if hosted and hosted.state == "running" else None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("twin not started")
        host, port = self._server.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    def start(self) -> str:
        self._server = ThreadingHTTPServer(self._addr, _Handler)
        self._server.daemon_threads = True
        self._server.state = self.state  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True, name="basilica-twin").start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._front is not None:
            self._front.close()
            self._front = None
        if self.state.host is not None:
            self.state.host.close()  # stops every Actor still running

    def __enter__(self) -> BasilicaTwin:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- controls for tests ----

    def set_offerings(self, offerings: list[dict]) -> None:
        with self.state.lock:
            self.state.offerings = list(offerings)

    def fault(self, route: str, status: int | None = 500, *, times: int = 1, delay: float = 0.0,
              message: str = "injected fault", plain: bool = False, after: bool = False) -> None:
        """Queue `times` faults for `route` ("GET /v2/secure-cloud/gpu-prices", "* /deployments*")."""
        fault = Fault(status, delay, message, plain, after)
        with self.state.lock:
            self.state.faults.setdefault(route, deque()).extend(fault for _ in range(times))

    def requests(self, method: str | None = None, path: str | None = None) -> list[dict]:
        with self.state.lock:
            return [r for r in self.state.requests
                    if (method is None or r["method"] == method) and (path is None or r["path"] == path)]

    def add_rental(self, offering_id: str, *, name: str | None = None, status: str = "running") -> dict:
        """A rental made outside this project (e.g. in the web console): an orphan to our ledger."""
        with self.state.lock:
            offer = next(o for o in self.state.offerings if o["id"] == offering_id)
            return _public(self.state.add_rental(offer, name, status))

    def register_ssh_key(self, public_key: str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAtwin twin") -> dict:
        with self.state.lock:
            return _register_ssh_key(self.state, None, {}, {"name": "twin", "public_key": public_key})[1]

    @property
    def rentals(self) -> dict[str, dict]:
        return self.state.rentals

    @property
    def deployments(self) -> dict[str, TwinDeployment]:
        """UUID → the deployment (`spec` is the camelCase request body as received)."""
        return self.state.deployments

    def front_requests(self) -> list:
        """Every request that reached a deployment's URL (`FrontRequest`s), in order."""
        return list(self._front.requests) if self._front else []

    def by_friendly_name(self, name: str) -> list[TwinDeployment]:
        with self.state.lock:
            return [d for d in self.state.deployments.values() if d.friendly_name == name]


@contextmanager
def serve_twin(**kwargs: Any) -> Iterator[str]:
    """Run a twin for the duration of the block and yield its base URL."""
    with BasilicaTwin(**kwargs) as twin:
        yield twin.url


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m subnet.twins.basilica_twin", description="Local Basilica API twin")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    p.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    p.add_argument("--token", default="twin-token", help="bearer token the twin accepts")
    p.add_argument("--offerings", help="JSON file: a list of nodes[] entries (default: a sample catalogue)")
    p.add_argument("--balance", default="25.00")
    p.add_argument("--deployment-url", help="URL deployments report; may contain {name}")
    p.add_argument("--run-actors", choices=("docker", "off"), default="docker",
                   help="docker: each deployment's image runs as a hardened local container behind a token-checking "
                        "front (needs the image in the local Docker store); off: readiness is simulated")
    p.add_argument("--rate-limit", default="", help="REQUESTS/SECONDS per API token, e.g. 100/60 (429 beyond)")
    args = p.parse_args(argv)
    offerings = None
    if args.offerings:
        with open(args.offerings) as fh:
            offerings = json.load(fh)
    actor_host = None
    if args.run_actors == "docker":
        from subnet.config import Settings
        from subnet.runtime.factory import make_runtime

        actor_host = ActorHost(make_runtime("docker", Settings(), allow_local=True))
    rate = tuple(float(x) for x in args.rate_limit.split("/")) if args.rate_limit else None
    twin = BasilicaTwin(token=args.token, offerings=offerings, balance=args.balance,
                        deployment_url=args.deployment_url, host=args.host, port=args.port, actor_host=actor_host,
                        rate_limit=(int(rate[0]), rate[1]) if rate else None)
    print(f"basilica twin listening on {twin.start()} (export BASILICA_API_URL=that, BASILICA_API_TOKEN={args.token})",
          flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        twin.stop()


if __name__ == "__main__":
    main()
