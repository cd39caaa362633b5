"""A whole validator round over the real bittensor SDK and the stand-in chain node: commitments
read and scanned, stand-in Actors run and verified, weights composed and submitted as u16s.
Chain calls run in worker threads, as in the long-running validator."""

from __future__ import annotations

from subnet.util import aio
from subnet.config import Settings
from subnet.twins.standin import EchoChallenge, StandInRuntime
from subnet.state.store import Store
from subnet.validator.service import Validator, plan_round

from .conftest import NETUID
from .fake_substrate import Submitted

DIGEST = "sha256:" + "c" * 64
OTHER = "sha256:" + "d" * 64


def test_round_reads_commitments_and_sets_u16_weights(node, wallets, make_chain, tmp_path):
    import bittensor as bt

    validator_hk = bt.public_view(wallets["validator"], "hotkey").ss58_address
    node.register(NETUID, validator_hk, permit=True)  # uid 1 (uid 0: the subnet owner)
    for uid, hotkey in ((2, "5Honest"), (3, "5Copycat"), (4, "5Junk"), (5, "5Hanging")):
        node.register(NETUID, hotkey)
    node.put_commitment(NETUID, "5Honest", f"ghcr.io/a/env@{DIGEST}".encode(), block=900)
    node.put_commitment(NETUID, "5Copycat", f"ghcr.io/b/env@{DIGEST}".encode(), block=950)
    node.put_commitment(NETUID, "5Junk", b"ghcr.io/c/env:latest", block=960)
    node.put_commitment(NETUID, "5Hanging", f"ghcr.io/d/env@{OTHER}".encode(), block=970)

    chain = make_chain(wallets["validator"])
    settings = Settings(home=tmp_path, netuid=NETUID, tasks=4, call_timeout=0.3, version_key=9)
    runtime = StandInRuntime(latency_s=0.001, hang_for=frozenset({f"ghcr.io/d/env@{OTHER}"}))
    store = Store(tmp_path / "state.sqlite")
    plan = plan_round(chain.commitments(NETUID), lambda ref: str(ref))
    report = aio.run(Validator(chain, runtime, EchoChallenge(), settings, store).run_round(plan, b"seed"))

    miners = {m.hotkey: m for m in report.miners}
    assert miners["5Honest"].verified == 4 and miners["5Honest"].weight == 1.0
    assert miners["5Copycat"].faults == {"copy": 4}
    assert miners["5Hanging"].faults == {"timeout": 4}
    assert [r["hotkey"] for r in report.rejected] == ["5Junk"]
    assert report.weights_set == "set for 1 uids"
    stored = store.results_for_digest(DIGEST)  # results are kept per image digest, copies included
    assert [(r.uid, r.verified, r.fault) for r in stored if r.uid == 2] == [(2, True, None)] * 4
    assert {(r.uid, r.fault) for r in stored if r.uid != 2} == {(3, "copy")}
    assert [r.fault for r in store.results_for_digest(OTHER)] == ["timeout"] * 4
    assert node.submitted == [
        Submitted(
            "SubtensorModule", "set_mechanism_weights",
            {"netuid": NETUID, "mecid": 0, "dests": [2], "weights": [65535], "version_key": 9},
            signer=validator_hk,
        )
    ]


def _nobody_earns(node, wallets, make_chain, tmp_path, **settings):
    import bittensor as bt

    node.register(NETUID, bt.public_view(wallets["validator"], "hotkey").ss58_address, permit=True)
    node.register(NETUID, "5Hanging")
    node.put_commitment(NETUID, "5Hanging", f"ghcr.io/d/env@{OTHER}".encode(), block=970)
    chain = make_chain(wallets["validator"])
    runtime = StandInRuntime(latency_s=0.001, hang_for=frozenset({f"ghcr.io/d/env@{OTHER}"}))
    validator = Validator(chain, runtime, EchoChallenge(),
                          Settings(home=tmp_path, netuid=NETUID, tasks=2, call_timeout=0.2, **settings),
                          Store(tmp_path / "state.sqlite"))
    return aio.run(validator.run_round(plan_round(chain.commitments(NETUID), lambda ref: str(ref)), b"seed"))


def test_nobody_earning_burns_to_the_owner_hotkeys_uid_read_from_the_chain(node, wallets, make_chain, tmp_path):
    """The owner's hotkey need not be uid 0 (`set_sn_owner_hotkey` moves it): the burn follows it."""
    node.register(NETUID, "5NewOwnerHotkey")  # uid 1
    node.subnets[NETUID].owner_hotkey = "5NewOwnerHotkey"
    report = _nobody_earns(node, wallets, make_chain, tmp_path)
    assert report.weights == {1: 1.0} and report.burn_uid == 1
    assert report.weights_set == "set for 1 uids (nobody earned: all to the burn uid)"
    assert node.submitted[-1].params["dests"] == [1]


def test_without_a_registered_owner_hotkey_nothing_is_burned_to_an_assumed_uid_0(node, wallets, make_chain, tmp_path):
    node.subnets[NETUID].owner_hotkey = "5OwnerWithoutUid"
    report = _nobody_earns(node, wallets, make_chain, tmp_path)
    assert report.weights == {} and report.burn_uid is None and node.submitted == []
    assert report.weights_set == ("not set: nobody earned and there is no burn uid (the subnet owner's hotkey "
                                  "5OwnerWithoutUid holds no uid); set SUBNET_BURN_UID")
