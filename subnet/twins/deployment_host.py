"""Run the Basilica twin's deployments for real, behind a front that checks each one's share token.

A created deployment's image is started through one of our own runtimes (the process runtime for
env folders, the hardened Docker runtime for images), held open on a private event-loop thread
until the deployment is deleted. Every request to a deployment's URL goes through `DeploymentFront`,
which answers 401 unless the request carries that deployment's share token as the `token` query
parameter, then forwards the request to the Actor with the token stripped. This is how the real
service treats a private deployment: the token travels in the share URL's query string
(basilica-sdk 0.36.8 `_basilica.pyi`: `RegenerateShareTokenResponse.share_url` "Full shareable
URL with token as query parameter"; `DeploymentResponse.public` "publicly accessible (no token
required)").
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from subnet.protocol import InfraFault, MinerFault, Submission
from subnet.util.text import one_line

Resolve = Callable[[str], str]  # a deployment's image → what the runtime starts (env dir or image ref)


@dataclass
class Hosted:
    state: str = "starting"  # starting → running | failed; stopped after delete
    url: str | None = None
    error: str | None = None
    kind: str | None = None  # "miner" (the image failed) or "infra" (the host failed)


def actor_url(session: Any) -> str:
    """The Actor server's base URL behind a runtime session (process or Docker)."""
    if getattr(session, "base_url", None):  # a stand-in Actor (benchmarks)
        return str(session.base_url)
    inner = getattr(session, "_inner", session)  # DockerSession wraps an AffinetesSession
    return str(inner._env._backend._http_executor.base_url)


class ActorHost:
    """Starts and stops deployments' Actors on a private event loop (the twin's HTTP threads are sync)."""

    def __init__(self, runtime: Any, resolve: Resolve | None = None):
        self.runtime = runtime
        self.resolve = resolve or (lambda image: image)
        self._hosted: dict[str, Hosted] = {}
        self._stops: dict[str, asyncio.Event] = {}
        self._done: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="twin-actor-host")
        self._thread.start()

    def start(self, key: str, image: str, delay: float = 0.0, env: dict[str, str] | None = None) -> None:
        """`delay`: seconds before its container starts (scheduling and the image pull); `env`:
        the deployment's environment variables, given to its Actor."""
        with self._lock:
            self._hosted[key] = Hosted()
        self._done[key] = asyncio.run_coroutine_threadsafe(self._serve(key, image, delay, env), self._loop)

    def status(self, key: str) -> Hosted | None:
        with self._lock:
            return self._hosted.get(key)

    def stop(self, key: str, wait: float = 30.0) -> None:
        stop = self._stops.get(key)
        if stop is not None:
            self._loop.call_soon_threadsafe(stop.set)
        done = self._done.pop(key, None)
        if done is not None:
            with contextlib.suppress(Exception):
                done.result(timeout=wait)

    def close(self) -> None:
        for key in list(self._done):
            self.stop(key)
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(_drain(), self._loop).result(timeout=15)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    async def _serve(self, key: str, image: str, delay: float, env: dict[str, str] | None = None) -> None:
        stop = asyncio.Event()
        self._stops[key] = stop
        if delay > 0:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)  # deleted while it pulls: never starts
            if stop.is_set():
                self._set(key, state="stopped")
                return
        digest = image.rsplit("@", 1)[-1] if "@" in image else "sha256:" + "0" * 64
        submission = Submission(0, f"twin-{key[:8]}", self.resolve(image), digest, image)
        try:
            async with (self.runtime.open(submission, env) if env else self.runtime.open(submission)) as session:
                self._set(key, state="running", url=actor_url(session))
                await stop.wait()
        except MinerFault as fault:
            self._set(key, state="failed", error=one_line(fault.detail), kind="miner")
        except InfraFault as exc:
            self._set(key, state="failed", error=one_line(str(exc)), kind="infra")
        except Exception as exc:  # noqa: BLE001 - a twin bug must surface as a failed deployment
            self._set(key, state="failed", error=f"{type(exc).__name__}: {one_line(str(exc))}", kind="infra")
        else:
            self._set(key, state="stopped")

    def _set(self, key: str, **fields: Any) -> None:
        with self._lock:
            hosted = self._hosted.setdefault(key, Hosted())
            for name, value in fields.items():
                setattr(hosted, name, value)


class BusyServer(ThreadingHTTPServer):
    """A threaded loopback server whose listen backlog holds a whole round's connections (the
    standard library's default of 5 resets them when hundreds of calls arrive at once)."""

    request_queue_size = 1024
    daemon_threads = True


@dataclass(frozen=True)
class FrontRequest:
    deployment_id: str
    path: str
    token_ok: bool  # the request carried the deployment's current share token


async def _drain() -> None:
    """Cancel whatever is still running on the host's loop (Actors mid-start) and wait for it."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


TokenLookup = Callable[[str], "tuple[str | None, str | None] | None"]  # id → (token, actor url) or None


class DeploymentFront:
    """One loopback HTTP server in front of every twin deployment: `/d/<id>/<path>?token=...`."""

    def __init__(self, lookup: TokenLookup, host: str = "127.0.0.1") -> None:
        self.requests: list[FrontRequest] = []  # what reached each deployment, for tests
        self._server = BusyServer((host, 0), _front_handler(lookup, self.requests))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                                        name="twin-deployment-front")
        self._thread.start()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url_for(self, deployment_id: str) -> str:
        return f"{self.base}/d/{deployment_id}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _front_handler(lookup: TokenLookup, seen: list[FrontRequest]) -> type[BaseHTTPRequestHandler]:
    client = httpx.Client(timeout=httpx.Timeout(None, connect=5.0))

    class Front(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            url = urlsplit(self.path)
            parts = url.path.split("/", 3)  # "", "d", id, rest
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if len(parts) < 3 or parts[1] != "d":
                return self._reply(404, b'{"detail":"no such deployment"}')
            found = lookup(parts[2])
            if found is None:
                return self._reply(404, b'{"detail":"no such deployment"}')
            token, target = found
            query = parse_qsl(url.query, keep_blank_values=True)
            given = [v for k, v in query if k == "token"]
            rest = "/" + (parts[3] if len(parts) > 3 else "")
            seen.append(FrontRequest(parts[2], rest, token is None or given == [token]))
            if token is not None and given != [token]:
                return self._reply(401, b'{"detail":"missing or invalid share token"}')
            if target is None:
                return self._reply(503, b'{"detail":"deployment is not ready"}')
            forward = urlencode([(k, v) for k, v in query if k != "token"])
            try:
                answer = client.request(self.command, f"{target}{rest}" + (f"?{forward}" if forward else ""),
                                        content=body, headers={"Content-Type": self.headers.get("Content-Type", "")})
            except httpx.HTTPError:
                return self._reply(502, b'{"detail":"upstream unreachable"}')
            self._reply(answer.status_code, answer.content, answer.headers.get("Content-Type", "application/json"))

        def _reply(self, status: int, data: bytes, ctype: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _serve

    return Front
