"""Chain correctness before compute, over the real bittensor SDK and the stand-in node: the
validator's standing, the network identity, commit-reveal receipts and reveal confirmation."""

from __future__ import annotations

import pytest

from subnet.util import aio
from subnet.chain.base import NotReady
from subnet.chain.preflight import check_ready
from subnet.config import Settings, package_version_key
from subnet.twins.standin import EchoChallenge, StandInRuntime
from subnet.state.store import Store
from subnet.validator.service import Validator, plan_round

from .conftest import NETUID

DIGEST = "sha256:" + "c" * 64


@pytest.fixture
def validator_hk(wallets):
    import bittensor as bt

    return bt.public_view(wallets["validator"], "hotkey").ss58_address


def test_the_network_identity_is_the_genesis_hash(node, wallets, make_chain):
    assert make_chain(wallets["validator"]).network_id() == node.genesis


def test_standing_reads_permit_stake_threshold_and_version_key(node, wallets, make_chain, validator_hk):
    node.register(NETUID, "5Other")
    node.register(NETUID, validator_hk, permit=True)
    net = node.subnets[NETUID]
    net.stakes[validator_hk] = 2_500_000_000_000  # 2500 alpha in rao
    net.weights_version_key = 1005
    node.stake_threshold = 1_000_000_000_000
    standing = make_chain(wallets["validator"]).standing(NETUID)
    assert (standing.uid, standing.validator_permit) == (2, True)  # after the owner (0) and 5Other
    assert standing.stake == 2500 and standing.min_stake == 1000
    assert standing.weights_version_key == 1005 and standing.commit_reveal is False


def test_every_missing_requirement_is_named_in_one_line(node, wallets, make_chain, validator_hk):
    node.register(NETUID, validator_hk, permit=False)
    node.subnets[NETUID].weights_version_key = 5_000_000
    node.stake_threshold = 1_000_000_000_000
    with pytest.raises(NotReady) as refused:
        check_ready(make_chain(wallets["validator"]), NETUID, version_key=1000)
    line = str(refused.value)
    assert "\n" not in line
    for needed in ("no validator permit", "stake 0 is below the minimum 1000", "WeightsVersionKey 5000000"):
        assert needed in line
    assert node.submitted == []


def test_an_unregistered_validator_is_refused_before_any_actor_starts(node, wallets, make_chain, tmp_path):
    node.register(NETUID, "5Miner")
    node.put_commitment(NETUID, "5Miner", f"ghcr.io/a/env@{DIGEST}".encode(), block=900)
    chain = make_chain(wallets["validator"])
    runtime = StandInRuntime(latency_s=0.001)
    validator = Validator(chain, runtime, EchoChallenge(), Settings(home=tmp_path, netuid=NETUID, tasks=2),
                          Store(tmp_path / "s.sqlite"))
    plan = plan_round(chain.commitments(NETUID), lambda ref: str(ref))
    with pytest.raises(NotReady, match="not registered"):
        aio.run(validator.run_round(plan, b"seed"))
    assert runtime.calls == 0 and runtime.closed == 0 and node.submitted == []


def test_commit_reveal_reports_committed_then_confirms_the_reveal(node, wallets, make_chain, tmp_path, validator_hk):
    node.subnets[NETUID].commit_reveal = True
    node.subnets[NETUID].weights_rate_limit = 0
    node.register(NETUID, validator_hk, permit=True)
    node.register(NETUID, "5Miner")
    node.put_commitment(NETUID, "5Miner", f"ghcr.io/a/env@{DIGEST}".encode(), block=900)
    chain = make_chain(wallets["validator"])
    store = Store(tmp_path / "s.sqlite")
    validator = Validator(chain, StandInRuntime(latency_s=0.001), EchoChallenge(),
                          Settings(home=tmp_path, netuid=NETUID, tasks=2), store)

    def round_():
        return aio.run(validator.run_round(plan_round(chain.commitments(NETUID), lambda ref: str(ref)), b"seed"))

    first = round_()
    assert first.weights_set.startswith("committed for 1 uids") and "reveal pending" in first.weights_set
    assert [s.function for s in node.submitted] == ["commit_timelocked_mechanism_weights"]
    assert store.last_weights().status == "committed" and store.last_weights().confirmed_block is None

    second = round_()  # not revealed yet
    assert second.reveal == f"reveal of round {first.round_id} pending"

    node.reveal(NETUID, {2: 65535})  # uid 0: the owner, 1: this validator, 2: the miner  # the chain reveals at the drand round
    third = round_()
    assert third.reveal.startswith(f"reveal of round {second.round_id} confirmed at block")


def test_version_key_comes_from_the_package_version():
    assert package_version_key("1.2.3") == 1_002_003
    assert package_version_key("0.1.0") == 1_000
    assert package_version_key("2.0.0rc1") == 2_000_000
    assert Settings().version_key == package_version_key()
