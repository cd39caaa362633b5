"""A local Basilica twin: the paths and JSON of the real API, so the real `basilica` SDK talks to it.

Speaks (all behind `Authorization: Bearer <token>`):
  GET  /v2/secure-cloud/gpu-prices?available_only=true   -> {"nodes": [...], "count": n}
  GET  /v2/secure-cloud/rentals                          -> {"rentals": [...], "total_count": n}
  POST /v2/secure-cloud/rentals/start  {offering_id, ssh_public_key_id, name?}
  POST /v2/secure-cloud/rentals/{id-or-name}/stop
  GET|POST|DELETE /ssh-keys   GET /billing/balance   GET /billing/usage   GET /health
  POST /deployments (camelCase; answers with the server's UUID)   GET /deployments   GET|DELETE
  /deployments/{uuid}   GET /deployments/{uuid}/logs|events   POST /deployments/{uuid}/share-token
Modules: `twin_state.py` (state), `basilica_routes.py` (handlers), `basilica_deployments.py` (how
deployments behave, each behaviour with its source in the real SDK or the last public server, in
either server generation), `basilica_profile.py` (production timings: pulls of minutes, evictions,
preemption, spot reclaims; time-scaled), `deployment_host.py` (deployments that really run, behind
a token-checking front). The rate limit (off unless set) counts per client IP or `X-API-Key`, as the
public server's does, before authentication.
Errors are the real envelope `{"error": {"code", "message", "timestamp", "retryable"}}` (the server's
`crates/basilica-api/src/error.rs`).

Test controls (no auth, loopback only): the Python methods of `BasilicaTwin` (`fault`, `requests`,
`set_offerings`, `add_rental`, `register_ssh_key`, `rentals`, `deployments`, `front_requests`), or over
HTTP for the subprocess mode: GET /_twin/requests, GET /_twin/deployments, POST /_twin/faults
{"route", "faults": [{"status", "delay", "message", "plain", "after", "times"}]}, PUT /_twin/offerings
[...], POST /_twin/rentals {"offering_id", "name", "status"}, PATCH /_twin/config {"token", "balance",
"deployment_url", "ready_after_polls", "state_model", "generation"}, POST /_twin/reset. Faults queue per route
("METHOD /path", `*` wildcards for the method or a path suffix) and are used once each, in order.

Without an `ActorHost` a deployment reports `url` = `deployment_url` (may contain `{name}`, replaced by
the UUID; default an unresolvable `http://{name}.twin.invalid`) and readiness is simulated. With one,
each deployment's image runs for real and its URL is the token-checking front.

Caveat: the SDK's `delete_ssh_key()` holds the GIL while it waits, so against an IN-PROCESS twin it
deadlocks; every other call releases the GIL. Use the subprocess mode for that one call.

Standalone server (its deployments run by the Docker runtime): `python -m subnet.dryrun.basilica_twin`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

from subnet.twins.basilica_deployments import Generation, TwinDeployment
from subnet.twins.basilica_routes import ROUTES, _register_ssh_key
from subnet.twins.deployment_host import ActorHost, BusyServer, DeploymentFront
from subnet.twins.twin_state import DEFAULT_OFFERINGS, Fault, TwinError, TwinState, _public, now_iso, offering

__all__ = ["BasilicaTwin", "DEFAULT_OFFERINGS", "offering", "serve_twin"]

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# SRV `crates/basilica-api/src/error.rs` 163-199 (`error_code`) and 238-300 (`impl IntoResponse`): the code of
# the usual `ApiError` behind each status (a validation error is INVALID_REQUEST, the billing limit
# BAD_REQUEST: routes pass their own), and `retryable` (203-235) true only for the transient kinds
# (timeouts, upstream/validator communication, service unavailable) — never for 429.
_CODES = {400: "BAD_REQUEST", 401: "AUTH_ERROR", 402: "INSUFFICIENT_BALANCE", 403: "AUTHZ_ERROR",
          404: "NOT_FOUND", 408: "TIMEOUT", 409: "CONFLICT", 429: "RATE_LIMIT", 500: "INTERNAL_ERROR",
          502: "HTTP_CLIENT_ERROR", 503: "SERVICE_UNAVAILABLE", 504: "SSH_TIMEOUT"}


# ---- HTTP plumbing -----------------------------------------------------------------------------


def _error_body(status: int, message: str, code: str | None = None) -> dict:
    return {"error": {"code": code or f"BASILICA_API_{_CODES.get(status, 'OTHER_ERROR')}", "message": message,
                      "timestamp": now_iso(), "retryable": status in (408, 502, 503, 504)}}


def _limiter_key(headers: Any, client_ip: str) -> str:
    """SRV `api/middleware/rate_limit.rs` 170-200: an `X-API-Key` header if sent, else the client's IP
    (the SDK sends `Authorization: Bearer`, so in practice: per IP, whatever the token)."""
    key = headers.get("X-API-Key")
    return f"key:{key}" if key else f"ip:{client_ip}"


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
        if fault and not fault.after:
            time.sleep(fault.delay)
        if fault and fault.status and not fault.after:
            return self._send(fault.status, fault.message if fault.plain else _error_body(fault.status, fault.message))
        # The rate limit is the outer layer (SRV `api/middleware/mod.rs` 31-52), before authentication.
        if st.over_rate_limit(_limiter_key(self.headers, self.client_address[0])):
            # error.rs: RateLimitExceeded → 429, retryable false, no Retry-After
            return self._send(429, _error_body(429, "Too many requests. Please try again later.",
                                                "BASILICA_API_RATE_LIMIT"))
        auth = self.headers.get("Authorization") or ""
        if path != "/health" and auth != f"Bearer {st.token}":
            # SRV `api/middleware/auth.rs`: `ApiError::Authentication` (BASILICA_API_AUTH_ERROR) either way
            why = "Missing Authorization header" if not auth else "Invalid API key"
            return self._send(401, _error_body(401, f"Authentication error: {why}", "BASILICA_API_AUTH_ERROR"))
        answer = self._route(st, path, query, body)
        if fault and fault.after:  # the work is done; the answer comes late, or as an error
            time.sleep(fault.delay)
            if fault.status:
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
                    return exc.status, _error_body(exc.status, exc.message, exc.code)
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
            if "generation" in data:  # "today" or "srv"
                st.generation = Generation.named(data["generation"])
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
        self._ticking = threading.Event()
        if actor_host is not None:
            self.state.host = actor_host
            self._front = DeploymentFront(self._front_lookup, host=host)
            self.state.deployment_url = self._front.url_for("{name}")

    def _front_lookup(self, dep_id: str) -> tuple[str | None, str | None] | None:
        with self.state.lock:
            d = self.state.deployments.get(dep_id)
            if d is None:
                return None
            if self.state.host is not None and self.state.disrupt_if_due(d, time.monotonic()):
                return d.share_token if d.private else None, None  # its pod is gone now
            hosted = self.state.host.status(dep_id) if self.state.host else None
            return d.share_token if d.private else None, hosted.url if hosted and hosted.state == "running" else None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("twin not started")
        host, port = self._server.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}"

    def start(self) -> str:
        self._server = BusyServer(self._addr, _Handler)
        self._server.daemon_threads = True
        self._server.state = self.state  # type: ignore[attr-defined]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True, name="basilica-twin").start()
        if self.state.host is not None:  # disruptions happen on time, asked about or not
            self._ticking.clear()
            threading.Thread(target=self._tick, daemon=True, name="basilica-twin-fates").start()
        return self.url

    def _tick(self) -> None:
        while not self._ticking.wait(0.05):
            self.state.tick()

    def stop(self) -> None:
        self._ticking.set()
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
