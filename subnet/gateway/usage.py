"""Metered LLM spend in SQLite: one row per call, written atomically, so a restart keeps every budget.

A call's row is written BEFORE it is forwarded, holding its reservation as its charge
(state "reserved"); settling replaces the charge with what the upstream's `usage` says (state
"settled"). A process that dies mid-call therefore leaves the reservation charged: money is
released only on proof. Totals per (round, miner, task) live in `llm_spend`, updated in the same
transaction as the call's row, so a budget check reads one row, not the history.

Every method is one transaction run through `subnet.state.db.retrying` (one-line `StateError`s).
The gateway calls them on its event loop (see metering.py for why), so the file must be the
gateway's own: a lock held by another process is waited for briefly (BUSY_WAIT_S, one retry), then
the call is refused (503) rather than the loop stalled.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from subnet.state.db import check_integrity, retrying as _retrying

BUSY_WAIT_S = 0.25


def retrying(path, fn):
    return _retrying(path, fn, retries=1, first_backoff_s=0.05)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS llm_calls (
  id INTEGER PRIMARY KEY,
  round_id INTEGER NOT NULL, uid INTEGER NOT NULL, task_index INTEGER NOT NULL,
  model TEXT NOT NULL, state TEXT NOT NULL,
  reserved_usd REAL NOT NULL, usd REAL NOT NULL,
  prompt_tokens INTEGER, completion_tokens INTEGER,
  started REAL NOT NULL, settled REAL);
CREATE TABLE IF NOT EXISTS llm_spend (
  round_id INTEGER NOT NULL, uid INTEGER NOT NULL, task_index INTEGER NOT NULL,
  usd REAL NOT NULL DEFAULT 0,
  PRIMARY KEY (round_id, uid, task_index));
"""


@dataclass(frozen=True)
class Spend:
    task_usd: float
    round_usd: float


class UsageStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        check_integrity(self.path)
        self._db = retrying(self.path, self._open)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_WAIT_S, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a crash of this process (the restart case); only
        # a power cut can lose the last commits. FULL would fsync every call.
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        return db

    def close(self) -> None:
        self._db.close()

    def _spend(self, round_id: int, uid: int, task_index: int) -> Spend:
        rows = self._db.execute("SELECT task_index, usd FROM llm_spend WHERE round_id=? AND uid=?",
                                (round_id, uid)).fetchall()
        return Spend(sum(usd for t, usd in rows if t == task_index), sum(usd for _, usd in rows))

    def spend(self, round_id: int, uid: int, task_index: int = -1) -> Spend:
        return retrying(self.path, lambda: self._spend(round_id, uid, task_index))

    def reserve(self, round_id: int, uid: int, task_index: int, model: str, decide) -> tuple[int, object]:
        """In one transaction: read the spend, ask `decide(spend)` for a plan (an object with
        `reserved_usd`) or a refusal, and write the call's row when it is a plan.
        Returns (call id or 0, what `decide` returned)."""
        def work() -> tuple[int, object]:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                verdict = decide(self._spend(round_id, uid, task_index))
                usd = getattr(verdict, "reserved_usd", None)
                call_id = 0
                if usd is not None:
                    call_id = self._db.execute(
                        "INSERT INTO llm_calls (round_id, uid, task_index, model, state, reserved_usd, usd, started)"
                        " VALUES (?,?,?,?,'reserved',?,?,?)",
                        (round_id, uid, task_index, model, usd, usd, time.time())).lastrowid
                    self._add(round_id, uid, task_index, usd)
                self._db.execute("COMMIT")
                return call_id, verdict
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return retrying(self.path, work)

    def _add(self, round_id: int, uid: int, task_index: int, usd: float) -> None:
        self._db.execute(
            "INSERT INTO llm_spend (round_id, uid, task_index, usd) VALUES (?,?,?,?) "
            "ON CONFLICT (round_id, uid, task_index) DO UPDATE SET usd = usd + excluded.usd",
            (round_id, uid, task_index, usd))

    def settle(self, call_id: int, usd: float | None, prompt_tokens: int | None = None,
               completion_tokens: int | None = None) -> float:
        """Close a call: `usd` from the upstream's usage, or None to charge its reservation.
        Returns the charge. Settling a settled call changes nothing."""
        def work() -> float:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT round_id, uid, task_index, state, reserved_usd, usd FROM llm_calls "
                                       "WHERE id=?", (call_id,)).fetchone()
                if row is None or row[3] == "settled":
                    self._db.execute("COMMIT")
                    return row[5] if row else 0.0
                round_id, uid, task_index, _, reserved, _ = row
                charge = reserved if usd is None else usd
                self._db.execute("UPDATE llm_calls SET state='settled', usd=?, prompt_tokens=?, "
                                 "completion_tokens=?, settled=? WHERE id=?",
                                 (charge, prompt_tokens, completion_tokens, time.time(), call_id))
                self._add(round_id, uid, task_index, charge - reserved)
                self._db.execute("COMMIT")
                return charge
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return retrying(self.path, work)

    def round_spend(self, round_id: int) -> dict[int, float]:
        def work() -> dict[int, float]:
            rows = self._db.execute("SELECT uid, SUM(usd) FROM llm_spend WHERE round_id=? GROUP BY uid", (round_id,))
            return {uid: usd for uid, usd in rows}
        return retrying(self.path, work)
