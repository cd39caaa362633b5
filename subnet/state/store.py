"""The validator's SQLite state for one subnet: rounds, per-task results by image digest, the
evaluation cache, smoothed scores, weights sent, and one summary per round.

One file per (network, netuid) — see `subnet.state.files` for where it lives and how an old single
`state.sqlite` is migrated — so a digest seen on one subnet never decides anything on another.
The first-seen table (`subnet.state.first_seen`) shares the file with its own connection; SQLite's
WAL mode lets them share it. The Basilica spend ledger is NOT here: money is per state directory.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

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
CREATE TABLE IF NOT EXISTS evaluations (
  challenge TEXT NOT NULL, digest TEXT NOT NULL, round_id INTEGER NOT NULL, evaluated_at REAL NOT NULL,
  PRIMARY KEY (challenge, digest));
CREATE TABLE IF NOT EXISTS round_summaries (
  round_id INTEGER PRIMARY KEY, evaluated INTEGER NOT NULL, cached INTEGER NOT NULL,
  copies INTEGER NOT NULL, rejected INTEGER NOT NULL, weights_status TEXT NOT NULL,
  weights_block INTEGER, report TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS weights_sent (
  round_id INTEGER PRIMARY KEY, block INTEGER NOT NULL, status TEXT NOT NULL, weights TEXT NOT NULL,
  reveal_round INTEGER, confirmed_block INTEGER);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Owner labels read from content verified against its digest. `image_labels` (earlier versions) kept
-- labels from unverified content, which a thief's registry could forge: dropped, read again.
DROP TABLE IF EXISTS image_labels;
CREATE TABLE IF NOT EXISTS verified_labels (digest TEXT PRIMARY KEY, hotkey TEXT, checked_at REAL NOT NULL);
-- Miner faults proven by an image's own content (bytes that hash to the digest): true for good.
CREATE TABLE IF NOT EXISTS image_faults (
  digest TEXT PRIMARY KEY, kind TEXT NOT NULL, detail TEXT NOT NULL, found_at REAL NOT NULL);
"""

# Tables a pre-per-subnet `state.sqlite` may hold that belong to one subnet's state.
SUBNET_TABLES = ("rounds", "task_results", "smoothed_scores", "first_seen")


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
    llm_usd: float = 0.0  # LLM dollars the validator's gateway metered for this task


@dataclass(frozen=True)
class Evaluation:
    """The latest evaluation of a digest under one challenge version."""

    digest: str
    round_id: int
    evaluated_at: float


@dataclass(frozen=True)
class SentWeights:
    round_id: int
    block: int
    status: str  # "set" or "committed"
    weights: dict[int, float]
    reveal_round: int | None
    confirmed_block: int | None


def connect(path: Path, busy_timeout: float = 30.0) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    return db


_RESULT_COLUMNS = ("digest, uid, hotkey, task_index, verified, fault, reason, latency_ms, gpu_type, hourly_price, "
                   "llm_usd")


def _task_record(row: tuple) -> TaskRecord:
    d, u, h, t, v, f, r, lat, g, p, usd = row
    return TaskRecord(d, u, h, t, bool(v), f, r or "", lat, g, p, usd or 0.0)


class Store:
    def __init__(self, path: Path, busy_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self._db = connect(self.path, busy_timeout)
        self._db.executescript(_SCHEMA)
        if "abandoned" not in {row[1] for row in self._db.execute("PRAGMA table_info(rounds)")}:
            # Why a round ended without results (SIGTERM, crash); NULL for a completed round.
            self._db.execute("ALTER TABLE rounds ADD COLUMN abandoned TEXT")
        if "llm_usd" not in {row[1] for row in self._db.execute("PRAGMA table_info(task_results)")}:
            # LLM dollars per task (issue 16); NULL in rows written before, read as 0.
            self._db.execute("ALTER TABLE task_results ADD COLUMN llm_usd REAL")

    def close(self) -> None:
        self._db.close()

    # -- identity ------------------------------------------------------------------------------
    def set_meta(self, values: Mapping[str, Any]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in values.items()])

    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta"))

    # -- rounds and results --------------------------------------------------------------------
    def begin_round(self, mode: str, challenge: str, block: int) -> int:
        cur = self._db.execute(
            "INSERT INTO rounds (started_at, mode, challenge, block) VALUES (?, ?, ?, ?)",
            (time.time(), mode, challenge, block),
        )
        return int(cur.lastrowid)

    def finish_round(self, round_id: int, records: Iterable[TaskRecord]) -> None:
        rows = [
            (round_id, r.digest, r.uid, r.hotkey, r.task_index, int(r.verified), r.fault, r.reason,
             r.latency_ms, r.gpu_type, r.hourly_price, r.llm_usd)
            for r in records
        ]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO task_results VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
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

    def results_for_digest(self, digest: str, round_id: int | None = None) -> list[TaskRecord]:
        where, args = ("digest=?", (digest,)) if round_id is None else ("digest=? AND round_id=?", (digest, round_id))
        rows = self._db.execute(
            f"SELECT {_RESULT_COLUMNS} FROM task_results WHERE {where} ORDER BY round_id, task_index", args
        ).fetchall()
        return [_task_record(row) for row in rows]

    # -- the evaluation cache ------------------------------------------------------------------
    def evaluations(self, challenge: str) -> dict[str, Evaluation]:
        rows = self._db.execute(
            "SELECT digest, round_id, evaluated_at FROM evaluations WHERE challenge=?", (challenge,)
        )
        return {d: Evaluation(d, r, t) for d, r, t in rows}

    def record_evaluations(self, challenge: str, round_id: int, digests: Iterable[str], at: float | None = None) -> None:
        at = time.time() if at is None else at
        self._db.executemany(
            "INSERT OR REPLACE INTO evaluations VALUES (?, ?, ?, ?)",
            [(challenge, d, round_id, at) for d in digests],
        )

    # -- image labels (immutable per digest, so kept once known) --------------------------------
    def image_labels(self, digests: Iterable[str]) -> dict[str, str | None]:
        """The verified owner label (None: the image has none) of each digest that has been read."""
        wanted = list(digests)
        rows = self._db.execute(
            f"SELECT digest, hotkey FROM verified_labels WHERE digest IN ({','.join('?' * len(wanted))})", wanted
        ) if wanted else []
        return {d: h for d, h in rows}

    def save_image_label(self, digest: str, hotkey: str | None) -> None:
        """Only for a label read from content that hashes to `digest`."""
        self._db.execute("INSERT OR REPLACE INTO verified_labels VALUES (?, ?, ?)", (digest, hotkey, time.time()))

    def image_faults(self, digests: Iterable[str], since: float) -> dict[str, tuple[str, str]]:
        """digest → (fault kind, detail) for content-proven faults found at or after `since`."""
        wanted = list(digests)
        rows = self._db.execute(
            f"SELECT digest, kind, detail FROM image_faults WHERE found_at >= ? "
            f"AND digest IN ({','.join('?' * len(wanted))})", [since, *wanted]
        ) if wanted else []
        return {d: (k, detail) for d, k, detail in rows}

    def save_image_fault(self, digest: str, kind: str, detail: str) -> None:
        """Only for a fault in content that hashes to `digest` (it is then true from any registry)."""
        self._db.execute("INSERT OR REPLACE INTO image_faults VALUES (?, ?, ?, ?)", (digest, kind, detail, time.time()))

    # -- scores --------------------------------------------------------------------------------
    def smoothed_scores(self) -> dict[str, float]:
        return {hk: s for hk, s in self._db.execute("SELECT hotkey, score FROM smoothed_scores")}

    def save_smoothed_scores(self, scores: Mapping[str, float], round_id: int) -> None:
        """Replace the smoothed scores: a hotkey left out (deregistered, replaced on its uid) is
        forgotten, so if it ever comes back it starts from nothing."""
        with self._db:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM smoothed_scores")
            self._db.executemany(
                "INSERT OR REPLACE INTO smoothed_scores VALUES (?, ?, ?)",
                [(hk, float(s), round_id) for hk, s in scores.items()],
            )

    # -- weights and round summaries -----------------------------------------------------------
    def record_weights(self, round_id: int, block: int, status: str, weights: Mapping[int, float],
                       reveal_round: int | None = None) -> None:
        payload = json.dumps({str(k): float(v) for k, v in sorted(weights.items())})
        confirmed = block if status == "set" else None
        self._db.execute(
            "INSERT OR REPLACE INTO weights_sent VALUES (?, ?, ?, ?, ?, ?)",
            (round_id, block, status, payload, reveal_round, confirmed),
        )

    def confirm_weights(self, round_id: int, block: int) -> None:
        self._db.execute("UPDATE weights_sent SET confirmed_block=? WHERE round_id=?", (block, round_id))

    def last_weights(self) -> SentWeights | None:
        row = self._db.execute(
            "SELECT round_id, block, status, weights, reveal_round, confirmed_block FROM weights_sent "
            "ORDER BY round_id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        rid, block, status, weights, reveal, confirmed = row
        return SentWeights(rid, block, status, {int(k): v for k, v in json.loads(weights).items()}, reveal, confirmed)

    def save_summary(self, round_id: int, summary: Mapping[str, Any], report: Mapping[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO round_summaries VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (round_id, summary["evaluated"], summary["cached"], summary["copies"], summary["rejected"],
             summary["weights_status"], summary.get("weights_block"), json.dumps(report)),
        )

    def recent_rounds(self, limit: int = 10) -> list[dict[str, Any]]:
        rows = self._db.execute(
            "SELECT r.id, r.started_at, r.finished_at, r.mode, r.challenge, r.block, s.evaluated, s.cached, "
            "s.copies, s.rejected, s.weights_status, s.weights_block, r.abandoned FROM rounds r "
            "LEFT JOIN round_summaries s ON s.round_id = r.id ORDER BY r.id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        keys = ("round", "started_at", "finished_at", "mode", "challenge", "block", "evaluated", "cached",
                "copies", "rejected", "weights", "weights_block", "abandoned")
        return [dict(zip(keys, row)) for row in rows]

    def last_report(self) -> dict[str, Any] | None:
        row = self._db.execute("SELECT report FROM round_summaries ORDER BY round_id DESC LIMIT 1").fetchone()
        return None if row is None else json.loads(row[0])

    def cache_totals(self) -> dict[str, int]:
        evaluated, cached = self._db.execute(
            "SELECT COALESCE(SUM(evaluated), 0), COALESCE(SUM(cached), 0) FROM round_summaries"
        ).fetchone()
        return {"evaluated": int(evaluated), "cached": int(cached)}
