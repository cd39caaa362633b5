"""A local twin of the Docker Engine API (v1.41), enough for the Docker runtime's whole Actor path.

Driven by the real docker SDK and affinetes through `DOCKER_HOST=tcp://127.0.0.1:<port>`. It keeps
images, networks and containers in memory and speaks the paths and JSON of the Engine API
reference (docs.docker.com/engine/api/v1.41: `/_ping`, `/version`, `/info`, `/images/{name}/json`,
`/networks[/create|/{id}]`, `/containers/json|create|{id}/json|start|kill|stop|logs`, 404 bodies
`{"message": ...}`, list `filters` as JSON `{"label": ["k=v"]}` matched on equality).

What it does with GPUs is what dockerd does (moby `daemon/nvidia_linux.go`, `setNvidiaGPUs`): a
device request whose driver is `nvidia` (or whose capabilities include `gpu`) is served only when
the NVIDIA hook is present — here, when the twin was given GPUs — and its `DeviceIDs` become the
container's `NVIDIA_VISIBLE_DEVICES`; without the hook the create fails like dockerd's
`could not select device driver "nvidia" with capabilities: [[gpu]]`. `docker info` lists the
`nvidia` runtime only when the twin has GPUs (as `nvidia-ctk runtime configure` leaves it).

Starting a container starts a stand-in Actor: an HTTP server on the container's "IP" (a random
127.x.y.z, port 8000) with `/health` and `/call`; `evaluate` answers with what the Actor can see
(`NVIDIA_VISIBLE_DEVICES`, its CPU-thread variables) beside an echo of its arguments, so a test
checks what the container got.
Every request is recorded (`requests`) for tests to assert on.
"""

from __future__ import annotations

import json
import random
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

API_VERSION = "1.41"


@dataclass
class Container:
    id: str
    name: str
    body: dict  # the create request as sent
    ip: str = ""
    status: str = "created"
    server: ThreadingHTTPServer | None = None
    env_seen: dict[str, str] = field(default_factory=dict)  # its environment once started

    @property
    def labels(self) -> dict:
        return self.body.get("Labels") or {}

    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.body.get("Env") or [] if "=" in item)


@dataclass
class DockerTwin:
    gpus: list[str] = field(default_factory=list)  # device ids the NVIDIA hook would serve
    images: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, Any]] = field(default_factory=list)
    containers: dict[str, Container] = field(default_factory=dict)
    networks: dict[str, dict] = field(default_factory=dict)
    started: list[dict[str, str]] = field(default_factory=list)  # each started container's environment
    shared_gpus: int = 0  # starts that found their GPU already used by a running container

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"tcp://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True, name="docker-twin").start()

    def close(self) -> None:
        for container in list(self.containers.values()):
            self._stop(container)
        self._server.shutdown()
        self._server.server_close()

    def creates(self) -> list[dict]:
        return [body for method, path, body in self.requests if method == "POST" and path.endswith("/containers/create")]

    # -- the API ------------------------------------------------------------------------------
    def route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        parts = [p for p in urlparse(path).path.split("/") if p]
        if parts and parts[0].startswith("v1."):
            parts = parts[1:]
        with self._lock:
            self.requests.append((method, "/" + "/".join(parts), body))
            return self._dispatch(method, parts, query, body)

    def _dispatch(self, method: str, parts: list[str], query: dict, body: Any) -> tuple[int, Any]:
        head = parts[0] if parts else ""
        if head == "_ping":
            return 200, "OK"
        if head == "version":
            return 200, {"ApiVersion": API_VERSION, "MinAPIVersion": "1.12", "Version": "20.10.24"}
        if head == "info":
            runtimes = {"runc": {"path": "runc"}} | ({"nvidia": {"path": "nvidia-container-runtime"}} if self.gpus else {})
            return 200, {"Runtimes": runtimes, "DefaultRuntime": "runc", "NCPU": 2, "ServerVersion": "20.10.24"}
        if head == "images" and len(parts) == 3:
            return (200, {"Id": parts[1], "Config": {"Labels": {}}, "RepoTags": []}) if parts[1] in self.images \
                else (404, {"message": f"No such image: {parts[1]}"})
        if head == "networks":
            return self._networks(method, parts[1:], query, body)
        if head == "containers":
            return self._containers(method, parts[1:], query, body)
        return 404, {"message": f"page not found: {method} /{'/'.join(parts)}"}

    def _networks(self, method: str, rest: list[str], query: dict, body: Any) -> tuple[int, Any]:
        if method == "POST" and rest == ["create"]:
            net_id = uuid.uuid4().hex
            self.networks[net_id] = {"Id": net_id, "Name": body["Name"], "Labels": body.get("Labels") or {},
                                     "Internal": body.get("Internal", False), "Containers": {}}
            return 201, {"Id": net_id, "Warning": ""}
        if method == "GET" and not rest:
            return 200, [n for n in self.networks.values() if _matches(n["Labels"], query)]
        key = rest[0] if rest else ""
        net = self.networks.get(key) or next((n for n in self.networks.values() if n["Name"] == key), None)
        if net is None:
            return 404, {"message": f"network {rest[0] if rest else ''} not found"}
        if method == "GET":
            return 200, net
        if method == "DELETE":
            del self.networks[net["Id"]]
            return 204, None
        return 200, None  # connect / disconnect

    def _containers(self, method: str, rest: list[str], query: dict, body: Any) -> tuple[int, Any]:
        if method == "GET" and rest == ["json"]:
            return 200, [{"Id": c.id, "Names": [f"/{c.name}"], "Labels": c.labels, "State": c.status}
                         for c in self.containers.values() if _matches(c.labels, query) and
                         (c.status == "running" or query.get("all", ["0"])[0] in ("1", "true", "True"))]
        if method == "POST" and rest == ["create"]:
            return self._create(query.get("name", [""])[0], body)
        key = rest[0] if rest else ""
        container = next((c for c in self.containers.values() if key and (c.name == key or c.id.startswith(key))), None)
        if container is None:
            return 404, {"message": f"No such container: {rest[0] if rest else ''}"}
        action = rest[1] if len(rest) > 1 else ""
        if method == "GET" and action == "json":
            return 200, self._inspect(container)
        if method == "GET" and action == "logs":
            return 200, b""
        if method == "POST" and action == "start":
            for request in (container.body.get("HostConfig") or {}).get("DeviceRequests") or []:
                if not self.gpus:  # dockerd builds the spec at start; no NVIDIA hook, no driver
                    caps = "[" + " ".join("[" + " ".join(c) + "]" for c in request.get("Capabilities") or []) + "]"
                    return 500, {"message": f'could not select device driver "{request.get("Driver", "")}" '
                                            f"with capabilities: {caps}"}  # Go's %v of [][]string
            self._start(container)
            return 204, None
        if method == "POST" and action in ("kill", "stop"):
            self._stop(container)
            return 204, None
        if method == "DELETE":
            self._stop(container)
            del self.containers[container.id]
            return 204, None
        return 404, {"message": f"page not found: {method} {action}"}

    def _create(self, name: str, body: dict) -> tuple[int, Any]:
        if body.get("Image") not in self.images:
            return 404, {"message": f"No such image: {body.get('Image')}"}
        container = Container(uuid.uuid4().hex + uuid.uuid4().hex[:32], name or uuid.uuid4().hex[:12], body)
        self.containers[container.id] = container
        return 201, {"Id": container.id, "Warnings": []}

    def _inspect(self, c: Container) -> dict:
        net = (c.body.get("HostConfig") or {}).get("NetworkMode") or "bridge"
        return {"Id": c.id, "Name": f"/{c.name}", "Image": c.body.get("Image"),
                "State": {"Status": c.status, "Running": c.status == "running", "OOMKilled": False,
                          "ExitCode": 0, "StartedAt": "2026-01-01T00:00:00Z"},
                "Config": {"Labels": c.labels, "Hostname": c.id[:12], "Env": c.body.get("Env") or []},
                "HostConfig": c.body.get("HostConfig") or {},
                "NetworkSettings": {"Networks": {net: {"IPAddress": c.ip}}}}

    def _start(self, c: Container) -> None:
        env = c.env()
        for request in (c.body.get("HostConfig") or {}).get("DeviceRequests") or []:
            if request.get("DeviceIDs"):  # moby setNvidiaGPUs: DeviceIDs → NVIDIA_VISIBLE_DEVICES
                env["NVIDIA_VISIBLE_DEVICES"] = ",".join(request["DeviceIDs"])
        busy = {d for o in self.containers.values() if o.status == "running"
                for d in (o.env_seen.get("NVIDIA_VISIBLE_DEVICES") or "").split(",") if d}
        mine = set(filter(None, env.get("NVIDIA_VISIBLE_DEVICES", "").split(",")))
        self.shared_gpus += bool(busy & mine)
        c.env_seen = env
        self.started.append(env)
        c.server, c.ip = _actor_server(env)
        threading.Thread(target=c.server.serve_forever, daemon=True).start()
        c.status = "running"

    def _stop(self, c: Container) -> None:
        if c.server is not None:
            c.server.shutdown()
            c.server.server_close()
            c.server = None
        c.status = "exited"


def _matches(labels: dict, query: dict) -> bool:
    filters = json.loads(query.get("filters", ["{}"])[0] or "{}")
    wanted = filters.get("label") or []
    if isinstance(wanted, dict):  # the older map form {"k=v": true}
        wanted = list(wanted)
    for item in wanted:
        key, _, value = item.partition("=")
        if key not in labels or (value and labels[key] != value):
            return False
    return True


def _actor_server(env: dict[str, str]) -> tuple[ThreadingHTTPServer, str]:
    class Actor(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self._send({"status": "ok"})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            seen = {k: env.get(k) for k in ("NVIDIA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
            self._send({"status": "success", "result": {**body["kwargs"], "env": seen}})  # an echo Actor

        def _send(self, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args) -> None:
            pass

    for _ in range(50):
        ip = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
        try:
            return ThreadingHTTPServer((ip, 8000), Actor), ip
        except OSError:
            continue
    raise RuntimeError("no free 127.x.y.z:8000 for a stand-in Actor")


def _handler(twin: DockerTwin):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw.strip() else None
            code, payload = twin.route(method, self.path, parse_qs(urlparse(self.path).query), body)
            data = payload if isinstance(payload, bytes) else (
                b"" if payload is None else payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
            self.send_response(code)
            kind = "text/plain" if isinstance(payload, str) else "application/json"
            self.send_header("Content-Type", "application/vnd.docker.raw-stream" if isinstance(payload, bytes) else kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def do_DELETE(self) -> None:  # noqa: N802
            self._serve("DELETE")

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve("HEAD")

        def log_message(self, *_args) -> None:
            pass

    return Handler
