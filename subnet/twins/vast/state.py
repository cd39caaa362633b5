"""The twin's accounts: instances, the rate limit per (endpoint, key), the daily search quota, the
`created` log (pure: no I/O; the server holds the lock).

Instance rows use vast-python's field names (vastai 1.9.1 `vastai/data/instance.py`): `actual_status`,
`cur_state`, `intended_status`, `status_msg`, `dph_total`, `label`, `public_ipaddr`, `ports` (Docker's
map `{"8000/tcp": [{"HostIp", "HostPort"}]}`, read so by `vastai/sdk.py`), `extra_env` as
`[[key, value], ...]` (`vastai/api/instances.py` `show_instance` turns it into a dict), `start_date`.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit


class Created(NamedTuple):
    """What a create asked for (tests check what was rented; env values stay out: tokens)."""

    offer_id: int
    price: float | None
    label: str | None
    env_keys: tuple[str, ...]


@dataclass
class TwinInstance:
    id: int
    offer_id: int
    image: str
    env: dict[str, str]
    label: str | None
    price: float | None  # the bid; None on demand
    dph_total: float
    ports_wanted: tuple[int, ...]  # from env keys "-p 8000:8000" (docker run options in env)
    start_s: float = 0.0  # production seconds from create to the Actor starting (the offer's)
    pull_error: str | None = None  # the image cannot be pulled: it exits after its pull time
    runs_actor: bool = True  # runtype "args": the image's own entrypoint (the Actor) runs
    start_date: float = field(default_factory=time.time)
    knocked: str | None = None  # "outbid" | "offline": a knob overrides what the Actor host says
    knocked_msg: str = ""

    def row(self, hosted: Any) -> dict:
        """The instance as `GET /instances/{id}/` shows it, given the Actor host's view (`Hosted`)."""
        actual, msg, ports = self._status(hosted)
        return {"id": self.id, "machine_id": 10_000 + self.offer_id, "label": self.label, "image_uuid": self.image,
                "image_runtype": "args", "actual_status": actual, "cur_state": self._cur_state(),
                "next_state": self._cur_state(),
                "intended_status": "stopped" if self.knocked == "outbid" else "running",
                "status_msg": msg, "dph_total": self.dph_total, "is_bid": self.price is not None,
                "public_ipaddr": "127.0.0.1", "ports": ports, "num_gpus": 1,
                "extra_env": [[k, v] for k, v in self.env.items()], "start_date": self.start_date}

    def _cur_state(self) -> str:
        return "stopped" if self.knocked == "outbid" else "running"

    def _status(self, hosted: Any) -> tuple[str | None, str, dict]:
        if self.knocked == "outbid":
            return "exited", self.knocked_msg, {}
        if self.knocked == "offline":
            return "offline", self.knocked_msg, {}
        state = getattr(hosted, "state", "starting")
        if state == "running" and hosted.url:
            port = urlsplit(str(hosted.url)).port
            mapped = {f"{p}/tcp": [{"HostIp": "0.0.0.0", "HostPort": str(port)}] for p in self.ports_wanted
                      if p == 8000}  # the Actor's port; any other -p has nothing listening behind it
            return "running", "", mapped
        if state in ("failed", "stopped"):
            return "exited", hosted.error or "container exited", {}
        return "loading", "Pulling image and starting the container", {}


def wanted_ports(env: dict[str, str]) -> tuple[int, ...]:
    """Ports asked for as env keys `-p <host>:<container>` (the issue's Vast facts; the CLI's
    `--env '-p 8000:8000'`), container side."""
    ports = []
    for key in env:
        parts = key.split()
        if len(parts) == 2 and parts[0] == "-p":
            try:
                ports.append(int(parts[1].split(":")[-1].split("/")[0]))
            except ValueError:
                continue
    return tuple(ports)


class Limits:
    """429s: a rate per (endpoint, key) over a sliding window (`rate`: n calls per `window` s), forced
    ones (`throttle`), and the daily search quota per key (`quota`: searches left; None = no quota).
    Vast's 429 carries no Retry-After (the issue's facts; `vastai/api/client.py` falls back to its
    own backoff when the header is absent)."""

    def __init__(self, rate: tuple[int, float] | None = None, clock=time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self.quota: dict[str, int] = {}
        self.quota_all: int | None = None
        self._calls: dict[tuple[str, str], deque] = defaultdict(deque)
        self._forced: dict[str, int] = defaultdict(int)

    def throttle(self, endpoint: str, times: int = 1) -> None:
        self._forced[endpoint] += times

    def too_frequent(self, endpoint: str, key: str) -> bool:
        if self._forced.get(endpoint, 0) > 0:
            self._forced[endpoint] -= 1
            return True
        if self.rate is None:
            return False
        limit, window = self.rate
        now, calls = self.clock(), self._calls[(endpoint, key)]
        while calls and calls[0] <= now - window:
            calls.popleft()
        if len(calls) >= limit:
            return True
        calls.append(now)
        return False

    def search_allowed(self, key: str) -> bool:
        left = self.quota.get(key, self.quota_all)
        if left is None:
            return True
        if left <= 0:
            return False
        self.quota[key] = left - 1
        return True
