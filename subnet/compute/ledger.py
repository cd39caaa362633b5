"""The spend ledger: every Basilica rental or deployment and every Vast.ai instance we create,
written BEFORE the create call.

A crash between "row written" and "API answered" leaves a `starting` row, never an untracked
machine: the next `subnet gpus rentals` (or a validator's start-up reclaim) finds it. Rows are found
by the client-chosen `name`, which is also sent to Basilica, so a lost answer can be matched later.
A name may be reused once its resource is gone (a deployment named after an image digest): rows are
never overwritten, so spend history stays, and the newest row with a name is the current one.

Lives in the project's state DB (`subnet.config.Settings().store_path`) in its own table; we open our
own connection and never touch other modules' tables.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Iterable, Protocol

KINDS = ("rental", "deployment", "instance")  # instance: a Vast.ai instance (its label is the name)
LIVE_STATES = ("starting", "active")  # states that may be costing money
_NEWEST = "id = (SELECT MAX(id) FROM ledger_resources WHERE name = ?)"  # updates touch the current row only

_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL CHECK (kind IN ('rental', 'deployment', 'instance')),
    name         TEXT NOT NULL,
    remote_id    TEXT,
    state        TEXT NOT NULL CHECK (state IN ('starting', 'active', 'stopped', 'failed')),
    owner        TEXT NOT NULL DEFAULT '',
    offering_id  TEXT,
    gpu_type     TEXT,
    gpu_count    INTEGER,
    is_spot      INTEGER,
    hourly_rate  TEXT,
    total_cost   TEXT,
    detail       TEXT NOT NULL DEFAULT '{}',
    error        TEXT,
    created_at   REAL NOT NULL,
    started_at   REAL,
    stopped_at   REAL
);
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS ledger_resources_name ON ledger_resources (name);
CREATE INDEX IF NOT EXISTS ledger_resources_remote ON ledger_resources (remote_id);
CREATE INDEX IF NOT EXISTS ledger_resources_state ON ledger_resources (kind, state);
"""


@dataclass
class LedgerEntry:
    id: int
    kind: str
    name: str
    remote_id: str | None
    state: str
    owner: str
    offering_id: str | None
    gpu_type: str | None
    gpu_count: int | None
    is_spot: bool | None
    hourly_rate: Decimal | None  # BOX price per hour
    total_cost: Decimal | None
    detail: dict = field(default_factory=dict)
    error: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    stopped_at: float | None = None

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    def cost_so_far(self, now: float) -> Decimal:
        """Final cost when Basilica reported one, else hourly box price × hours since the create call."""
        if self.total_cost is not None:
            return self.total_cost
        if self.hourly_rate is None or self.state == "failed":
            return Decimal(0)
        end = self.stopped_at if self.stopped_at is not None else now
        hours = Decimal(str(max(0.0, end - (self.started_at or self.created_at)))) / 3600
        return (self.hourly_rate * hours).quantize(Decimal("0.000001"))

    def to_json(self, now: float) -> dict:
        return {
            "kind": self.kind,
            "name": self.name,
            "remote_id": self.remote_id,
            "state": self.state,
            "owner": self.owner,
            "offering_id": self.offering_id,
            "gpu_type": self.gpu_type,
            "gpu_count": self.gpu_count,
            "is_spot": self.is_spot,
            "hourly_rate": float(self.hourly_rate) if self.hourly_rate is not None else None,
            "cost_so_far": float(self.cost_so_far(now)),
            "created_at": iso(self.created_at),
            "stopped_at": iso(self.stopped_at),
            "error": self.error,
            "detail": self.detail,
        }


class Ledger:
    def __init__(self, path: Path | str):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit: each write is durable before the API call that follows it.
        self._db = sqlite3.connect(str(self.path), timeout=10, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.executescript(_TABLE.replace("{table}", "ledger_resources"))
        _widen_kinds(self._db)
        self._db.executescript(_INDEXES)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def begin(
        self,
        kind: str,
        name: str,
        *,
        owner: str = "",
        offering_id: str | None = None,
        gpu_type: str | None = None,
        gpu_count: int | None = None,
        is_spot: bool | None = None,
        hourly_rate: Decimal | None = None,
        detail: dict | None = None,
    ) -> LedgerEntry:
        """Record intent to create `name`; call this before the API call that creates it.

        Idempotent while `name` is live (a retry after a crash reuses the row)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        current = self.get(name)
        if current is not None and current.live:
            return current
        self._db.execute(
            "INSERT INTO ledger_resources (kind, name, state, owner, offering_id, gpu_type, gpu_count, is_spot,"
            " hourly_rate, detail, created_at) VALUES (?, ?, 'starting', ?, ?, ?, ?, ?, ?, ?, ?)",
            (kind, name, owner, offering_id, gpu_type, gpu_count, _bool(is_spot), _dec(hourly_rate),
             json.dumps(detail or {}, sort_keys=True), time.time()),
        )
        return self.get(name)

    def mark_active(self, name: str, remote_id: str, hourly_rate: Decimal | None = None) -> None:
        self._db.execute(
            "UPDATE ledger_resources SET state='active', remote_id=?, started_at=COALESCE(started_at, ?),"
            f" hourly_rate=COALESCE(?, hourly_rate), error=NULL WHERE {_NEWEST}",
            (remote_id, time.time(), _dec(hourly_rate), name),
        )

    def mark_failed(self, name: str, error: str) -> None:
        self._db.execute(
            f"UPDATE ledger_resources SET state='failed', error=?, stopped_at=? WHERE {_NEWEST}",
            (error[:500], time.time(), name),
        )

    def mark_stopped(self, name: str, total_cost: Decimal | None = None, note: str | None = None) -> None:
        self._db.execute(
            "UPDATE ledger_resources SET state='stopped', stopped_at=COALESCE(stopped_at, ?),"
            f" total_cost=COALESCE(?, total_cost), error=COALESCE(?, error) WHERE {_NEWEST}",
            (time.time(), _dec(total_cost), note, name),
        )

    def add_detail(self, name: str, **fields) -> None:
        """Merge `fields` into the current row's detail (e.g. when its Actor first answered)."""
        entry = self.get(name)
        if entry is None:
            return
        detail = {**entry.detail, **fields}
        self._db.execute("UPDATE ledger_resources SET detail=? WHERE id=?", (json.dumps(detail, sort_keys=True), entry.id))

    def note(self, name: str, text: str) -> None:
        """Say why a row is still open (e.g. a create whose answer was lost)."""
        self._db.execute(f"UPDATE ledger_resources SET error=? WHERE {_NEWEST}", (text[:500], name))

    def get(self, name: str) -> LedgerEntry | None:
        row = self._db.execute(
            "SELECT * FROM ledger_resources WHERE name=? ORDER BY id DESC LIMIT 1", (name,)
        ).fetchone()
        return _entry(row) if row else None

    def find(self, ref: str, kind: str | None = None) -> LedgerEntry | None:
        """The newest row whose name or remote id is `ref`."""
        sql = "SELECT * FROM ledger_resources WHERE (name=? OR remote_id=?)"
        args: list = [ref, ref]
        if kind:
            sql += " AND kind=?"
            args.append(kind)
        row = self._db.execute(sql + " ORDER BY id DESC LIMIT 1", args).fetchone()
        return _entry(row) if row else None

    def entries(self, kind: str | None = None, states: Iterable[str] | None = None) -> list[LedgerEntry]:
        sql, args = "SELECT * FROM ledger_resources WHERE 1=1", []
        if kind:
            sql += " AND kind=?"
            args.append(kind)
        if states is not None:
            states = list(states)
            sql += f" AND state IN ({','.join('?' * len(states))})"
            args.extend(states)
        return [_entry(r) for r in self._db.execute(sql + " ORDER BY id", args)]

    def live(self, kind: str | None = None) -> list[LedgerEntry]:
        return self.entries(kind, LIVE_STATES)


def _widen_kinds(db: sqlite3.Connection) -> None:
    """Migration: a table made before Vast instances allows kinds ('rental', 'deployment') only.

    SQLite cannot alter a CHECK constraint, so the table is rebuilt with the same columns, in one
    transaction (rows, ids and the AUTOINCREMENT sequence kept); a concurrent opener re-checks
    under the write lock and finds it done."""
    if "'instance'" in _table_sql(db):
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if "'instance'" not in _table_sql(db):
            db.execute(_TABLE.replace("{table}", "ledger_resources_widened"))
            db.execute("INSERT INTO ledger_resources_widened SELECT * FROM ledger_resources")
            db.execute("DROP TABLE ledger_resources")
            db.execute("ALTER TABLE ledger_resources_widened RENAME TO ledger_resources")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _table_sql(db: sqlite3.Connection) -> str:
    row = db.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name='ledger_resources'").fetchone()
    return row[0] if row else ""


# ---- what was spent (pure) --------------------------------------------------------------------


@dataclass(frozen=True)
class Spend:
    """Dollars spent, split by where the figure comes from: `billed` is what Basilica reported (a
    rental's final cost, a deployment found in the usage history); `estimated` is list price × time,
    all a deployment ever gets from a server that reports no price for it."""

    billed: Decimal = Decimal(0)
    estimated: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.billed + self.estimated

    @property
    def source(self) -> str:
        """"billed", "estimate", or "partly estimated" (none when nothing was spent)."""
        if not self.estimated:
            return "billed"
        return "partly estimated" if self.billed else "estimate"

    def describe(self) -> str:
        if not self.estimated:
            return f"${self.total:.4f} (billed)"
        if not self.billed:
            return f"${self.total:.4f} (estimate: list price × time; Basilica reports no price for deployments)"
        return f"${self.total:.4f} (${self.billed:.4f} billed + ${self.estimated:.4f} estimated at list price)"


def spend_of(entries: Iterable[LedgerEntry], now: float) -> Spend:
    billed = estimated = Decimal(0)
    for e in entries:
        if e.total_cost is not None:
            billed += e.total_cost
        else:
            estimated += e.cost_so_far(now)
    return Spend(billed, estimated)


# ---- reconciliation (pure) -------------------------------------------------------------------


class RemoteResource(Protocol):
    rental_id: str
    name: str
    active: bool


@dataclass
class Reconciliation:
    tracked: list[tuple[LedgerEntry, RemoteResource]]
    remote_orphans: list[tuple[RemoteResource, str]]  # running remotely, not (or no longer) live in the ledger
    ledger_orphans: list[LedgerEntry]  # live in the ledger, not running remotely


def reconcile(entries: list[LedgerEntry], remotes: list[RemoteResource]) -> Reconciliation:
    """Match live remote resources to ledger rows by remote id, or by name when the answer was lost."""
    by_remote = {e.remote_id: e for e in entries if e.remote_id}
    by_name = {e.name: e for e in entries}
    result = Reconciliation([], [], [])
    matched: set[int] = set()
    for remote in (r for r in remotes if r.active):
        entry = by_remote.get(remote.rental_id) or by_name.get(remote.name)
        if entry is None:
            result.remote_orphans.append((remote, "not in the ledger"))
        elif not entry.live:
            result.remote_orphans.append((remote, f"ledger says {entry.state}"))
        else:
            matched.add(entry.id)
            result.tracked.append((entry, remote))
    result.ledger_orphans = [e for e in entries if e.live and e.id not in matched]
    return result


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _entry(row: sqlite3.Row) -> LedgerEntry:
    return LedgerEntry(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        remote_id=row["remote_id"],
        state=row["state"],
        owner=row["owner"],
        offering_id=row["offering_id"],
        gpu_type=row["gpu_type"],
        gpu_count=row["gpu_count"],
        is_spot=None if row["is_spot"] is None else bool(row["is_spot"]),
        hourly_rate=Decimal(row["hourly_rate"]) if row["hourly_rate"] is not None else None,
        total_cost=Decimal(row["total_cost"]) if row["total_cost"] is not None else None,
        detail=json.loads(row["detail"] or "{}"),
        error=row["error"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        stopped_at=row["stopped_at"],
    )


def _dec(value: Decimal | float | None) -> str | None:
    return None if value is None else str(Decimal(str(value)))


def _bool(value: bool | None) -> int | None:
    return None if value is None else int(bool(value))
