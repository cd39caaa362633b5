"""Surviving SQLite trouble in the state file: each failure becomes one line that names the file.

Generic over any `sqlite3` connection and any file (the store, first-seen digests, the ledger):
- `retrying(path, fn)` runs one unit of work, retrying a busy database (another process holds
  the write lock) with backoff; any other error, or a lock that outlasts the retries, becomes a
  `StateError` whose `kind` says what happened: busy, full, damaged or io.
- `check_integrity(path)` runs at start: a damaged file is named, with what to do about it.
- `describe(exc, path)` turns any `sqlite3.Error` into that one line, e.g. "disk full" with the
  path (a full tmpfs otherwise reads as "disk I/O error").
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Callable, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

BUSY_RETRIES = 4
FIRST_BACKOFF_S = 0.5
LOW_SPACE_BYTES = 1 << 20  # an I/O error with less than this free is a full disk

_BUSY = {"SQLITE_BUSY", "SQLITE_LOCKED"}
_DAMAGED = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}


class StateError(Exception):
    """The state file could not be read or written; `str()` is one line naming the file."""

    def __init__(self, kind: str, path: Path, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # "busy" | "full" | "damaged" | "io"
        self.path = path


def _code(exc: sqlite3.Error) -> str:
    # "SQLITE_IOERR_WRITE" -> "SQLITE_IOERR" (Python 3.11+; older ones are judged by the text)
    return "_".join((getattr(exc, "sqlite_errorname", "") or "").split("_")[:2])


def describe(exc: sqlite3.Error, path: Path) -> StateError:
    code = _code(exc)
    text = str(exc)
    if code in _BUSY or "locked" in text:
        return StateError("busy", path, f"state file {path} is locked by another process ({text})")
    if code == "SQLITE_FULL" or "disk is full" in text or (code == "SQLITE_IOERR" and _low_space(path)):
        return StateError("full", path, f"disk full: cannot write the state file {path} ({text}); free space there")
    if code in _DAMAGED or "malformed" in text or "not a database" in text:
        return StateError("damaged", path, damaged_advice(path, text))
    return StateError("io", path, f"state file {path}: {text}")


def damaged_advice(path: Path, detail: str) -> str:
    return (f"state file {path} is damaged ({detail}): stop the validator and restore the file from a "
            f"backup, or move it aside (mv {path} {path}.damaged) to start with fresh state")


def _low_space(path: Path) -> bool:
    try:
        return shutil.disk_usage(Path(path).parent).free < LOW_SPACE_BYTES
    except OSError:
        return False


def retrying(
    path: Path, fn: Callable[[], T], *, retries: int = BUSY_RETRIES, first_backoff_s: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """`fn()`, retried with doubling backoff while the database is busy; errors as `StateError`.

    `fn` must be one unit of work (one transaction): on a failure nothing of it was written, so
    running it again is safe.
    """
    backoff = FIRST_BACKOFF_S if first_backoff_s is None else first_backoff_s
    for attempt in range(retries + 1):
        try:
            return fn()
        except sqlite3.Error as exc:
            error = describe(exc, path)
            if error.kind != "busy" or attempt == retries:
                raise error from None
            log.info("%s; retrying in %.1fs", error, backoff)
            sleep(backoff)
            backoff *= 2
    raise AssertionError("unreachable")


def check_integrity(path: Path) -> None:
    """Raise `StateError("damaged")` naming `path` when SQLite finds it damaged; a missing file is fine."""
    path = Path(path)
    if not path.exists():
        return
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
        try:
            rows = db.execute("PRAGMA quick_check").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise describe(exc, path) from None
    problems = [r[0] for r in rows if r and r[0] != "ok"]
    if problems:
        raise StateError("damaged", path, damaged_advice(path, "; ".join(problems[:3])))
