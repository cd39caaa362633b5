"""One validator process per state directory: an exclusive `flock` on `SUBNET_HOME/validator.lock`.

Two processes on one home would both set weights and lose each other's smoothed-score updates
(read, then write). The kernel drops the lock when its holder dies, however it dies (SIGKILL
included), so there is never a stale lock to clear by hand; it also holds across containers that
bind-mount the same directory. The holder writes who it is into the file, so the refused process
can say who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

LOCK_FILE = "validator.lock"


class HomeBusy(Exception):
    """Another process holds this state directory; the message says who, in one line."""


class HomeLock:
    def __init__(self, home: Path) -> None:
        self.path = Path(home).expanduser() / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> "HomeLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(_read(fd))
            os.close(fd)
            raise HomeBusy(f"{self.path.parent} is in use by another validator ({holder}); stop it, "
                           "or give this one its own SUBNET_HOME") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> "HomeLock":
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()


def _read(fd: int) -> dict:
    try:
        return json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder.get("pid"):
        return "holder unknown"
    return f"pid {holder['pid']} on host {holder.get('host', '?')} since {holder.get('since', '?')}"
