"""The ledger holds Vast instances (kind "instance"): a state file made before them is migrated in
place, rows and ids kept, and a row's detail can record when its Actor first answered."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

from subnet.compute.ledger import Ledger

OLD_SCHEMA = """
CREATE TABLE ledger_resources (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL CHECK (kind IN ('rental', 'deployment')),
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
CREATE INDEX ledger_resources_name ON ledger_resources (name);
CREATE TABLE other_module (x INTEGER);
INSERT INTO other_module VALUES (42);
"""


def test_old_state_file_is_widened_in_place(tmp_path):
    path = tmp_path / "state.sqlite"
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.execute("INSERT INTO ledger_resources (kind, name, state, owner, hourly_rate, created_at)"
               " VALUES ('deployment', 'sn-old-1', 'active', 'validator:abc', '0.3', 1.0)")
    db.commit()
    db.close()

    with Ledger(path) as ledger:
        old = ledger.get("sn-old-1")
        assert (old.kind, old.state, old.hourly_rate, old.id) == ("deployment", "active", Decimal("0.3"), 1)
        row = ledger.begin("instance", "sn-abc-u1-deadbeef0000-x1", owner="validator:abc", offering_id="77",
                           gpu_type="RTX A4000", gpu_count=1, is_spot=False, hourly_rate=Decimal("0.2"),
                           detail={"provider": "vast"})
        assert row.kind == "instance" and row.id == 2
        ledger.add_detail(row.name, ready_at=123.5)
        assert ledger.get(row.name).detail == {"provider": "vast", "ready_at": 123.5}
        assert [e.name for e in ledger.live("instance")] == [row.name]

    with Ledger(path) as again:  # a second open finds it done
        assert len(again.entries()) == 2
    db = sqlite3.connect(path)
    assert db.execute("SELECT x FROM other_module").fetchone() == (42,)  # other tables untouched
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"ledger_resources_name", "ledger_resources_remote", "ledger_resources_state"} <= indexes
    db.close()
