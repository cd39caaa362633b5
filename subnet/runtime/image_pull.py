"""One image pull under its own deadlines: a stalled or trickling registry costs one Actor's start.

The Docker SDK's pull reads the daemon's progress stream with no timeout at all, so a registry that
sends a layer one byte every few seconds holds the caller for as long as it likes. Here the same
daemon endpoint (`POST /images/create`) is read with httpx, with two limits:

- progress: the bytes the daemon reports (downloaded plus extracted, summed over layers) must grow
  by at least `STALL_MIN_BYTES` in every `stall_s` window; a silent daemon (a registry that
  answers nothing) ends the read after `stall_s` too;
- total: the pull ends after `total_s` however it progresses.

Ending the read closes the connection, and the daemon cancels a pull whose client has gone, so
nothing keeps talking to the registry. Only Docker hosts reached over a unix socket or plain TCP
are read this way; a TLS Docker host falls back to the SDK's pull (no deadline; logged once).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import httpx

log = logging.getLogger(__name__)

STALL_MIN_BYTES = 256 * 1024
REPORT_EVERY_S = 5.0


class PullTimedOut(Exception):
    """The pull made too little progress, or took too long; the message says which, in one line."""


class PullRefused(Exception):
    """The daemon or the registry reported an error; the message is theirs, in one line."""


@dataclass
class Progress:
    """Bytes the daemon reports per layer, and the window the stall rule is judged over."""

    stall_s: float
    layers: dict[str, int] = field(default_factory=dict)
    window_start: float = field(default_factory=time.monotonic)
    window_bytes: int = 0

    @property
    def total(self) -> int:
        return sum(self.layers.values())

    def record(self, event: dict) -> None:
        detail = event.get("progressDetail") or {}
        current = detail.get("current")
        if isinstance(current, int) and event.get("id"):
            key = f"{event['id']}:{event.get('status', '')}"  # downloading and extracting both count
            self.layers[key] = max(self.layers.get(key, 0), current)

    def check(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.total - self.window_bytes >= STALL_MIN_BYTES:
            self.window_start, self.window_bytes = now, self.total
        elif now - self.window_start > self.stall_s:
            gained = self.total - self.window_bytes
            raise PullTimedOut(f"stalled: {gained} bytes in the last {self.stall_s:g}s "
                               f"(less than {STALL_MIN_BYTES // 1024} KiB)")


def daemon_endpoint() -> tuple[httpx.BaseTransport, str] | None:
    """A transport and base URL for the Docker host `docker.from_env()` uses, or None (TLS)."""
    from docker.utils import kwargs_from_env, parse_host

    if kwargs_from_env().get("tls"):
        return None
    host = parse_host(os.environ.get("DOCKER_HOST"))
    if host.startswith("http+unix://"):
        return httpx.HTTPTransport(uds=host[len("http+unix://"):]), "http://docker"
    if host.startswith("http://"):
        return httpx.HTTPTransport(), host
    return None


def stream_pull(client: Any, repository: str, tag: str, stall_s: float, total_s: float,
                report: Callable[[int], None] | None = None) -> None:
    """Pull `repository:tag` through the daemon; raises PullTimedOut or PullRefused. `report` is
    told the bytes so far, at most every `REPORT_EVERY_S` seconds."""
    from docker.auth import get_config_header, resolve_repository_name

    endpoint = daemon_endpoint()
    if endpoint is None:
        _warn_no_deadline()
        for event in client.api.pull(repository, tag=tag, stream=True, decode=True):
            _raise_on_error(event)
        return
    transport, base = endpoint
    headers = {}
    auth = get_config_header(client.api, resolve_repository_name(repository)[0])
    if auth:
        headers["X-Registry-Auth"] = auth
    timeout = httpx.Timeout(stall_s, connect=10.0)  # a read that waits stall_s for any byte ends
    deadline = time.monotonic() + total_s
    progress = Progress(stall_s)
    reported = time.monotonic()
    with httpx.Client(transport=transport, base_url=base, timeout=timeout) as http:
        url = f"/v{client.api.api_version}/images/create"
        try:
            with http.stream("POST", url, params={"fromImage": repository, "tag": tag}, headers=headers) as response:
                if response.status_code >= 400:
                    response.read()
                    raise PullRefused(_error_text(response))
                for event in _events(response):
                    _raise_on_error(event)
                    progress.record(event)
                    progress.check()
                    if report is not None and time.monotonic() - reported >= REPORT_EVERY_S:
                        reported = time.monotonic()
                        report(progress.total)
                    if time.monotonic() > deadline:
                        raise PullTimedOut(f"took longer than {total_s:g}s ({progress.total} bytes so far)")
        except httpx.ReadTimeout:
            raise PullTimedOut(f"stalled: no progress at all for {stall_s:g}s") from None
        except httpx.HTTPError as exc:
            raise PullRefused(f"Docker daemon: {exc}") from None


def _events(response: httpx.Response) -> Iterator[dict]:
    for line in response.iter_lines():
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


def _raise_on_error(event: Any) -> None:
    if isinstance(event, dict) and event.get("error"):
        raise PullRefused(str(event["error"]))


def _error_text(response: httpx.Response) -> str:
    try:
        return str(response.json().get("message") or response.text)
    except ValueError:
        return response.text or f"HTTP {response.status_code}"


_warned: list[bool] = []


def _warn_no_deadline() -> None:
    if not _warned:
        _warned.append(True)
        log.warning("image pulls through a TLS Docker host run without deadlines")
