"""Where a subnet's state lives: one SQLite file per (network, netuid) under `SUBNET_HOME`.

    SUBNET_HOME/subnets/<network id>/netuid-<netuid>.sqlite

The network id comes from the chain itself (`Chain.network_id()`: the genesis hash for bittensor
networks, the devchain file for the devchain), not from the name typed on the command line, so
`finney` and a `wss://` URL of the same chain share state while a test chain never does.

Validators from before per-subnet state kept everything in `SUBNET_HOME/state.sqlite`. Its subnet
tables (rounds, results, smoothed scores, first-seen digests) are moved, rows and all, into the
first subnet store opened afterwards — the subnet that validator was running — and then dropped
from the old file. The Basilica spend ledger stays in `state.sqlite`: money is per home.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from subnet.state.store import SUBNET_TABLES, Store, connect

log = logging.getLogger(__name__)

_SLUG = re.compile(r"[^a-z0-9]+")


def network_slug(network_id: str) -> str:
    """A short, file-name-safe form of a network identity (stable for the same identity)."""
    text = network_id.lower()
    if text.startswith("0x") and len(text) > 18:  # a genesis hash: its first 16 hex digits suffice
        return "genesis-" + text[2:18]
    slug = _SLUG.sub("-", text).strip("-")[:40]
    return f"{slug}-{hashlib.sha256(network_id.encode()).hexdigest()[:8]}"


def subnet_state_path(home: Path, network_id: str, netuid: int) -> Path:
    return Path(home) / "subnets" / network_slug(network_id) / f"netuid-{int(netuid)}.sqlite"


def legacy_state_path(home: Path) -> Path:
    return Path(home) / "state.sqlite"


def open_subnet_store(home: Path, network_id: str, network: str, netuid: int, busy_timeout: float = 30.0) -> Store:
    """The store for (network, netuid), migrating a pre-per-subnet `state.sqlite` into it once."""
    path = subnet_state_path(home, network_id, netuid)
    moved = migrate_legacy_state(legacy_state_path(home), path)
    if moved:
        log.info("moved %d rows of %s into %s", moved, legacy_state_path(home), path)
    store = Store(path, busy_timeout=busy_timeout)
    store.set_meta({"network": network, "network_id": network_id, "netuid": netuid})
    return store


def migrate_legacy_state(legacy: Path, target: Path) -> int:
    """Copy the subnet tables of `legacy` into `target`, then drop them from `legacy`.

    Returns the number of rows copied (0 when there is nothing to move). Copies are
    `INSERT OR IGNORE` keyed by each table's primary key, so a migration interrupted between the
    copy and the drop can run again without duplicating anything.
    """
    if not legacy.exists() or legacy.resolve() == target.resolve():
        return 0
    with sqlite3.connect(legacy) as probe:
        present = [t for t in SUBNET_TABLES if _has_table(probe, "main", t)]
    if not present:
        return 0
    Store(target).close()  # the target's schema first: columns are copied by name
    _ensure_first_seen(target)
    db = connect(target)
    try:
        db.execute("ATTACH DATABASE ? AS legacy", (str(legacy),))
        moved = 0
        db.execute("BEGIN IMMEDIATE")
        for table in present:
            columns = ", ".join(_columns(db, "legacy", table))
            moved += db.execute(
                f"INSERT OR IGNORE INTO main.{table} ({columns}) SELECT {columns} FROM legacy.{table}"
            ).rowcount
        db.execute("COMMIT")
        for table in present:
            db.execute(f"DROP TABLE legacy.{table}")
        db.execute("DETACH DATABASE legacy")
        return moved
    finally:
        db.close()


@dataclass(frozen=True)
class StoreFile:
    path: Path
    network: str
    network_id: str
    netuid: int
    modified: float


def find_subnet_stores(home: Path) -> list[StoreFile]:
    """Every subnet store under `home`, most recently written first."""
    found = []
    for path in (Path(home) / "subnets").glob("*/netuid-*.sqlite"):
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            meta = dict(db.execute("SELECT key, value FROM meta")) if _has_table(db, "main", "meta") else {}
        netuid = int(meta.get("netuid") or path.stem.split("-", 1)[1])
        found.append(StoreFile(path, meta.get("network", "?"), meta.get("network_id", "?"), netuid,
                               _modified(path)))
    return sorted(found, key=lambda s: -s.modified)


def _modified(path: Path) -> float:
    wal = path.with_name(path.name + "-wal")
    return max(path.stat().st_mtime, wal.stat().st_mtime if wal.exists() else 0.0)


def _ensure_first_seen(path: Path) -> None:
    from subnet.state.first_seen import FirstSeenStore

    FirstSeenStore(path).close()


def _has_table(db: sqlite3.Connection, schema: str, table: str) -> bool:
    row = db.execute(f"SELECT 1 FROM {schema}.sqlite_master WHERE type='table' AND name=?", (table,)).fetchone()
    return row is not None


def _columns(db: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA {schema}.table_info({table})")]
