"""State per subnet: one store per (network, netuid), and the migration of an old single file."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

from subnet.chain.base import RawCommitment
from subnet.chain.commitments import scan_commitments
from subnet.chain.devchain import DevChain
from subnet.state.first_seen import FirstSeenStore
from subnet.compute.ledger import Ledger
from subnet.state.files import find_subnet_stores, network_slug, open_subnet_store, subnet_state_path
from subnet.state.store import Store, TaskRecord

DIGEST = "sha256:" + "e" * 64
GENESIS = "0x" + "2f" * 32


def test_the_same_digest_on_two_netuids_is_owned_independently(tmp_path):
    one = open_subnet_store(tmp_path, GENESIS, "finney", 1)
    two = open_subnet_store(tmp_path, GENESIS, "finney", 2)
    assert one.path != two.path
    ref = f"ghcr.io/a/env@{DIGEST}".encode()
    # alice committed the digest on netuid 1 first; bob is the first to commit it on netuid 2.
    on_one = scan_commitments([RawCommitment("alice", 1, 100, ref), RawCommitment("bob", 2, 200, ref)],
                              FirstSeenStore(one.path))
    on_two = scan_commitments([RawCommitment("bob", 4, 300, ref)], FirstSeenStore(two.path))
    assert [c.hotkey for c in on_one.accepted] == ["alice"] and [c.hotkey for c in on_one.copies] == ["bob"]
    assert [c.hotkey for c in on_two.accepted] == ["bob"] and on_two.copies == []


def test_networks_are_told_apart_by_identity_not_by_name(tmp_path):
    finney = subnet_state_path(tmp_path, GENESIS, 1)
    test = subnet_state_path(tmp_path, "0x" + "99" * 32, 1)
    assert finney != test and finney.parent.name == "genesis-" + "2f" * 8
    a = DevChain(tmp_path / "a" / "devchain.sqlite")
    b = DevChain(tmp_path / "b" / "devchain.sqlite")
    assert a.network_id() != b.network_id()
    assert network_slug(a.network_id()) != network_slug(b.network_id())
    assert network_slug(a.network_id()) == network_slug(DevChain(a.path).network_id())


def _legacy_home(tmp_path):
    """A home from before per-subnet state: subnet tables and the spend ledger in one file."""
    legacy = tmp_path / "state.sqlite"
    old = Store(legacy)
    round_id = old.begin_round("docker", "matrix-chain", 42)
    old.finish_round(round_id, [TaskRecord(DIGEST, 3, "alice", i, True, None, "", 12.5) for i in range(4)])
    old.save_smoothed_scores({"alice": 0.75, "bob": 0.1}, round_id)
    old.close()
    with FirstSeenStore(legacy) as seen:
        seen.claim(DIGEST, "alice", 40)
    with Ledger(legacy) as ledger:
        ledger.begin("deployment", "dep-1", owner="me", hourly_rate=Decimal("0.16"))
    return legacy


def test_an_old_state_file_is_migrated_without_losing_a_row_and_keeps_its_ledger(tmp_path):
    legacy = _legacy_home(tmp_path)
    running = Ledger(legacy)  # the Basilica runtime holds the ledger open while the store migrates
    store = open_subnet_store(tmp_path, GENESIS, "finney", 7)
    running.begin("deployment", "dep-2", owner="me")  # and keeps writing to it afterwards
    running.close()
    assert len(store.results_for_digest(DIGEST)) == 4
    assert store.smoothed_scores() == {"alice": 0.75, "bob": 0.1}
    assert store.recent_rounds()[0]["block"] == 42
    assert FirstSeenStore(store.path).owner(DIGEST).hotkey == "alice"
    tables = {r[0] for r in sqlite3.connect(legacy).execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "ledger_resources" in tables
    assert not tables & {"rounds", "task_results", "smoothed_scores", "first_seen"}
    with Ledger(legacy) as ledger:
        assert sorted(e.name for e in ledger.entries()) == ["dep-1", "dep-2"]
    # A second subnet opened later gets nothing of the first one's history.
    other = open_subnet_store(tmp_path, GENESIS, "finney", 8)
    assert other.results_for_digest(DIGEST) == [] and other.smoothed_scores() == {}


def test_stores_are_found_with_their_network_and_netuid(tmp_path):
    open_subnet_store(tmp_path, GENESIS, "finney", 7).close()
    open_subnet_store(tmp_path, "devchain:/x/devchain.sqlite", "devchain", 1).close()
    found = {(s.network, s.netuid) for s in find_subnet_stores(tmp_path)}
    assert found == {("finney", 7), ("devchain", 1)}
