"""The validator's SQLite state: rounds, per-task results by image digest, smoothed scores.

Other modules (first-seen digests, the spend ledger) keep their own tables in the same file with
their own connections; SQLite's WAL mode lets them share it.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rounds (
  id INTEGER PRIMARY KEY AUTOINCREMENT, started_at REAL NOT NULL, finished_at REAL,
  mode TEXT NOT NULL, challenge TEXT NOT NULL, block INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS task_results (
  round_id INTEGER NOT NULL, digest TEXT NOT NULL, uid INTEGER NOT NULL, hotkey TEXT NOT NULL,
  task_index INTEGER NOT NULL, verified INTEGER NOT NULL, fault TEXT, reason TEXT,
  latency_ms REAL, gpu_type TEXT, hourly_price REAL,
  PRIMARY KEY (round_id, digest, uid, task_index));
CREATE INDEX IF NOT EXISTS task_results_digest ON task_results (digest);
CREATE TABLE IF NOT EXISTS smoothed_scores (
  hotkey TEXT PRIMARY KEY, score REAL NOT NULL, round_id INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class TaskRecord:
    digest: str
    uid: int
    hotkey: str
    task_index: int
    verified: bool
    fault: str | None
    reason: str
    latency_ms: float | None
    gpu_type: str | None = None
    hourly_price: float | None = None


def connect(path: Path, busy_timeout: float = 30.0) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout)
    db.execute("PRAGMA journal_mode=WAL")
    return db


class Store:
    def __init__(self, path: Path, busy_timeout: float = 30.0) -> None:
        self.path = path
        self._db = connect(path, busy_timeout)
        self._db.executescript(_SCHEMA)
        if "abandoned" not in {row[1] for row in self._db.execute("PRAGMA table_info(rounds)")}:
            # Why a round ended without results (SIGTERM, crash); NULL for a completed round.
            self._db.execute("ALTER TABLE rounds ADD COLUMN abandoned TEXT")

    def close(self) -> None:
        self._db.close()

    def begin_round(self, mode: str, challenge: str, block: int) -> int:
        cur = self._db.execute(
            "INSERT INTO rounds (started_at, mode, challenge, block) VALUES (?, ?, ?, ?)",
            (time.time(), mode, challenge, block),
        )
        return int(cur.lastrowid)

    def finish_round(self, round_id: int, records: Iterable[TaskRecord]) -> None:
        rows = [
            (round_id, r.digest, r.uid, r.hotkey, r.task_index, int(r.verified), r.fault, r.reason,
             r.latency_ms, r.gpu_type, r.hourly_price)
            for r in records
        ]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO task_results VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            self._db.execute("UPDATE rounds SET finished_at=? WHERE id=?", (time.time(), round_id))

    def abandon_unfinished(self, reason: str, keep: Iterable[int] = ()) -> list[int]:
        """Mark every round without an end (but those in `keep`) abandoned: ended, never counted."""
        keep = set(keep)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            ids = [i for (i,) in self._db.execute("SELECT id FROM rounds WHERE finished_at IS NULL") if i not in keep]
            self._db.executemany("UPDATE rounds SET finished_at=?, abandoned=? WHERE id=?",
                                 [(time.time(), reason, i) for i in ids])
        return ids

    def results_for_digest(self, digest: str) -> list[TaskRecord]:
        rows = self._db.execute(
            "SELECT digest, uid, hotkey, task_index, verified, fault, reason, latency_ms, gpu_type, hourly_price "
            "FROM task_results WHERE digest=? ORDER BY round_id, task_index",
            (digest,),
        ).fetchall()
        return [TaskRecord(d, u, h, t, bool(v), f, r or "", l, g, p) for d, u, h, t, v, f, r, l, g, p in rows]

    def smoothed_scores(self) -> dict[str, float]:
        return {hk: s for hk, s in self._db.execute("SELECT hotkey, score FROM smoothed_scores")}

    def save_smoothed_scores(self, scores: Mapping[str, float], round_id: int) -> None:
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO smoothed_scores VALUES (?, ?, ?)",
                [(hk, float(s), round_id) for hk, s in scores.items()],
            )
