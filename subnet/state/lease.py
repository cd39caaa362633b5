"""Liveness leases: how a validator tells its own dead runs' leftovers from a live run's Actors.

Each run (one `DockerRuntime`, one process) holds a lease: a small JSON file
`SUBNET_HOME/leases/<run id>.json` that a background thread rewrites every `beat_s` seconds. A
run whose file is missing, unreadable, or older than `missed` beats is dead, whatever its PID:
PIDs are reused, a zombie answers `kill(pid, 0)`, and PID 1 of one container is PID 1 of the
next. The staleness bound is written into the file by its owner, so readers with other settings
agree with it. Wall-clock time is compared; all runs of one state directory share a host clock
(containers included) in every supported deployment.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_BEAT_S = 2.0
DEFAULT_MISSED = 3  # beats a run may miss (a busy host, a slow disk) before it counts as dead


def lease_dir(home: Path) -> Path:
    return Path(home).expanduser() / "leases"


@dataclass(frozen=True)
class LeaseState:
    run: str
    beat_at: float
    stale_after_s: float

    def stale(self, now: float | None = None) -> bool:
        return (now if now is not None else time.time()) - self.beat_at > self.stale_after_s


def read_lease(home: Path, run: str) -> LeaseState | None:
    """The lease of `run`, or None when it has none (never written, removed, or damaged)."""
    try:
        data = json.loads((lease_dir(home) / f"{run}.json").read_text())
        return LeaseState(run, float(data["beat_at"]), float(data["stale_after_s"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_is_alive(home: Path, run: str, now: float | None = None) -> bool:
    lease = read_lease(home, run)
    return lease is not None and not lease.stale(now)


def drop_stale_leases(home: Path, keep: set[str] = frozenset()) -> int:
    """Remove the lease files of dead runs (their leftovers are gone); returns how many."""
    dropped = 0
    folder = lease_dir(home)
    for path in folder.glob("*.json") if folder.is_dir() else ():
        run = path.stem
        if run not in keep and not run_is_alive(home, run):
            try:
                path.unlink()
                dropped += 1
            except OSError:
                pass
    return dropped


class Lease:
    """This run's heartbeat. `start()` writes the first beat before returning, so nothing this run
    creates afterwards can ever be seen without a fresh lease behind it."""

    def __init__(self, home: Path, run: str, beat_s: float = DEFAULT_BEAT_S, missed: int = DEFAULT_MISSED) -> None:
        self.home = Path(home).expanduser()
        self.run = run
        self.beat_s = beat_s
        self.stale_after_s = beat_s * missed
        self.path = lease_dir(self.home) / f"{run}.json"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()  # several Actor starts may race to start the lease

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "Lease":
        with self._starting:
            if self.running:
                return self
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._beat()
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat_forever, name=f"lease-{self.run}", daemon=True)
            self._thread.start()
            return self

    def stop(self, release: bool = True) -> None:
        """Stop beating; `release` removes the file (only once this run's leftovers are gone)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.beat_s + 1)
            self._thread = None
        if release:
            try:
                self.path.unlink()
            except OSError:
                pass

    def _beat_forever(self) -> None:
        while not self._stop.wait(self.beat_s):
            try:
                self._beat()
            except OSError as exc:  # a full disk: keep trying; readers see the lease age
                log.warning("lease %s: could not write the heartbeat: %s", self.path, exc)

    def _beat(self) -> None:
        body = json.dumps({"run": self.run, "beat_at": time.time(), "stale_after_s": self.stale_after_s,
                           "pid": os.getpid()})
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(body)
        os.replace(tmp, self.path)  # readers never see a half-written beat
