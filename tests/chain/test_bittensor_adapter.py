"""The bittensor adapter driving the real bittensor 11 SDK against a local stand-in node."""

from __future__ import annotations

import bittensor as bt
import pytest

from subnet.chain.base import ChainError, ChainUnavailable, Neuron, NotRegistered, RawCommitment, WeightsRateLimited
from subnet.chain.bittensor_chain import Backoff, BittensorChain
from subnet.chain.factory import open_chain

from .conftest import DIGEST_A, NETUID
from .fake_substrate import OWNER_HOTKEY, Submitted

REF = f"ghcr.io/acme/matrix-miner:v1@{DIGEST_A}"


def hotkey_of(wallet) -> str:
    return wallet.hotkeypub.ss58_address


def register_team(node, wallets, miners: int = 3) -> None:
    """uid 0: the subnet owner (registered with the subnet); 1: the validator (with permit); 2..: miners."""
    node.register(NETUID, hotkey_of(wallets["validator"]), permit=True)
    node.register(NETUID, hotkey_of(wallets["miner"]))
    for i in range(2, miners + 1):
        node.register(NETUID, f"5Miner{i}")


# -- commitments ------------------------------------------------------------------------------
def test_commit_is_one_raw_field_signed_by_the_hotkey_and_reads_back_with_its_block(node, wallets, make_chain):
    register_team(node, wallets)
    miner = wallets["miner"]
    chain = make_chain(miner)

    block = chain.commit(NETUID, REF.encode())

    data = REF.encode()
    assert len(data) <= 128
    assert node.submitted == [
        Submitted(
            "Commitments", "set_commitment",
            {"netuid": NETUID, "info": {"fields": [{f"Raw{len(data)}": data}]}},
            signer=hotkey_of(miner),
        )
    ]
    assert hotkey_of(miner) != miner.coldkeypub.ss58_address
    assert block == node.head
    assert chain.commitments(NETUID) == [RawCommitment(hotkey_of(miner), 2, block, data)]


def test_commitments_read_back_sorted_by_block_with_uids_and_raw_bytes(node, wallets, make_chain):
    register_team(node, wallets)
    node.put_commitment(NETUID, "5Miner3", b"late/x@" + DIGEST_A.encode(), block=900)
    node.put_commitment(NETUID, "5Miner2", b"\xff\xfe not utf-8", block=800)
    node.put_commitment(NETUID, "5Gone", b"gone/x@" + DIGEST_A.encode(), block=700)  # deregistered

    got = make_chain(wallets["validator"]).commitments(NETUID)

    assert got == [
        RawCommitment("5Gone", None, 700, b"gone/x@" + DIGEST_A.encode()),
        RawCommitment("5Miner2", 3, 800, b"\xff\xfe not utf-8"),
        RawCommitment("5Miner3", 4, 900, b"late/x@" + DIGEST_A.encode()),
    ]


def test_commit_by_unregistered_hotkey_is_refused_before_any_extrinsic(node, wallets, make_chain):
    chain = make_chain(wallets["miner"])
    with pytest.raises(NotRegistered, match=f"not registered on netuid {NETUID}"):
        chain.commit(NETUID, REF.encode())
    assert node.composed == [] and node.submitted == []


def test_commit_over_128_bytes_never_reaches_the_chain(node, wallets, make_chain):
    register_team(node, wallets)
    with pytest.raises(ValueError, match="129 bytes"):
        make_chain(wallets["miner"]).commit(NETUID, b"x" * 129)
    assert node.submitted == []


def test_chain_side_dispatch_error_is_a_chain_error_and_is_not_retried(node, wallets, make_chain, sleeps):
    register_team(node, wallets)
    node.reject_next = bt.ChainError("Bad origin", "BadOrigin")
    with pytest.raises(ChainError, match="Bad origin") as info:
        make_chain(wallets["miner"]).commit(NETUID, REF.encode())
    assert not isinstance(info.value, (NotRegistered, WeightsRateLimited, ChainUnavailable))
    assert len(node.submitted) == 1 and sleeps == []


# -- metagraph --------------------------------------------------------------------------------
def test_neurons_come_from_the_metagraph(node, wallets, make_chain):
    register_team(node, wallets, miners=2)
    node.subnets[NETUID].last_update[1] = 950
    chain = make_chain(wallets["validator"])

    assert chain.neurons(NETUID) == [
        Neuron(0, OWNER_HOTKEY, False, 0),
        Neuron(1, hotkey_of(wallets["validator"]), True, 950),
        Neuron(2, hotkey_of(wallets["miner"]), False, 0),
        Neuron(3, "5Miner2", False, 0),
    ]
    assert chain.subnet_owner(NETUID) == OWNER_HOTKEY
    assert chain.current_block() == node.head
    assert chain.hotkey == hotkey_of(wallets["validator"])


def test_unknown_subnet_is_a_chain_error(node, wallets, make_chain):
    with pytest.raises(ChainError, match="netuid 99 does not exist"):
        make_chain(wallets["validator"]).neurons(99)


# -- weights ----------------------------------------------------------------------------------
def test_set_weights_sends_u16_values_for_the_uids_with_the_version_key(node, wallets, make_chain):
    register_team(node, wallets)
    chain = make_chain(wallets["validator"])

    chain.set_weights(NETUID, {1: 0.5, 2: 0.25, 3: 0.25}, version_key=7)

    assert node.submitted == [
        Submitted(
            "SubtensorModule", "set_mechanism_weights",
            {"netuid": NETUID, "mecid": 0, "dests": [1, 2, 3], "weights": [65535, 32768, 32768], "version_key": 7},
            signer=hotkey_of(wallets["validator"]),
        )
    ]
    assert node.subnets[NETUID].last_update[1] == node.head


def test_weights_inside_the_rate_limit_raise_without_composing_anything(node, wallets, make_chain):
    register_team(node, wallets)
    node.subnets[NETUID].last_update[1] = node.head - 10  # limit is 100 blocks
    chain = make_chain(wallets["validator"])

    with pytest.raises(WeightsRateLimited) as info:
        chain.set_weights(NETUID, {1: 1.0}, version_key=1)

    assert info.value.retry_in_blocks == 90
    assert node.composed == [] and node.submitted == []


def test_weights_are_set_once_the_window_has_passed(node, wallets, make_chain):
    register_team(node, wallets)
    node.subnets[NETUID].last_update[1] = node.head - 100
    make_chain(wallets["validator"]).set_weights(NETUID, {1: 1.0}, version_key=1)
    assert [s.function for s in node.submitted] == ["set_mechanism_weights"]


def test_chain_side_rate_limit_maps_to_weights_rate_limited_after_one_submission(node, wallets, make_chain, sleeps):
    register_team(node, wallets)
    node.reject_next = bt.ChainError("Setting weights too fast.", "SettingWeightsTooFast")
    with pytest.raises(WeightsRateLimited) as info:
        make_chain(wallets["validator"]).set_weights(NETUID, {1: 1.0}, version_key=1)
    assert info.value.retry_in_blocks >= 1
    assert len(node.submitted) == 1 and sleeps == []


def test_weights_from_an_unregistered_hotkey_raise_not_registered(node, wallets, make_chain):
    node.register(NETUID, "5Someone")
    with pytest.raises(NotRegistered, match=hotkey_of(wallets["validator"])):
        make_chain(wallets["validator"]).set_weights(NETUID, {0: 1.0}, version_key=1)
    assert node.submitted == []


def test_all_zero_weights_are_refused_locally(node, wallets, make_chain):
    register_team(node, wallets)
    with pytest.raises(ChainError, match="no positive weight"):
        make_chain(wallets["validator"]).set_weights(NETUID, {1: 0.0, 2: 0.0}, version_key=1)
    assert node.composed == []


def test_commit_reveal_subnets_get_a_timelocked_commit_instead(node, wallets, make_chain):
    register_team(node, wallets)
    node.subnets[NETUID].commit_reveal = True
    make_chain(wallets["validator"]).set_weights(NETUID, {1: 0.75, 2: 0.25}, version_key=3)
    (sent,) = node.submitted
    assert (sent.module, sent.function) == ("SubtensorModule", "commit_timelocked_mechanism_weights")
    assert sent.params["netuid"] == NETUID and isinstance(sent.params["commit"], (bytes, bytearray))
    assert sent.signer == hotkey_of(wallets["validator"])


# -- connection trouble -----------------------------------------------------------------------
def test_refused_connections_are_retried_with_exponential_backoff(node, wallets, make_chain, sleeps):
    node.refuse_connects = 2
    assert make_chain(wallets["validator"]).current_block() == node.head
    assert node.connects == 3
    assert sleeps == [0.5, 1.0]


def test_an_endpoint_that_stays_down_is_chain_unavailable_after_bounded_attempts(node, wallets, make_chain, sleeps):
    node.refuse_connects = 1000
    with pytest.raises(ChainUnavailable) as info:
        make_chain(wallets["validator"]).commitments(NETUID)
    assert node.connects == 4
    assert sleeps == [0.5, 1.0, 2.0]
    message = str(info.value)
    assert "\n" not in message and "local" in message and "after 4 attempts" in message


def test_a_dropped_websocket_mid_session_reconnects_on_a_fresh_client(node, wallets, make_chain, sleeps):
    register_team(node, wallets)
    node.put_commitment(NETUID, "5Miner2", REF.encode(), block=990)
    chain = make_chain(wallets["validator"])
    chain.current_block()

    node.drop_reads = 1
    assert [c.hotkey for c in chain.commitments(NETUID)] == ["5Miner2"]
    assert node.connects == 2 and node.closes >= 1
    assert sleeps == [0.5]


def test_a_submit_lost_with_the_connection_is_resent_once_reconnected(node, wallets, make_chain, sleeps):
    register_team(node, wallets)
    node.drop_submits = 1
    block = make_chain(wallets["miner"]).commit(NETUID, REF.encode())
    assert [(s.function, s.signer) for s in node.submitted] == [("set_commitment", hotkey_of(wallets["miner"]))]
    assert node.subnets[NETUID].commitments[hotkey_of(wallets["miner"])]["block"] == block
    assert sleeps == [0.5]


def test_weights_that_landed_before_the_drop_are_not_sent_again(node, wallets, make_chain, sleeps):
    register_team(node, wallets)
    node.drop_after_apply = 1
    make_chain(wallets["validator"]).set_weights(NETUID, {1: 1.0}, version_key=1)
    assert [s.function for s in node.submitted] == ["set_mechanism_weights"]
    assert node.subnets[NETUID].last_update[1] > 0
    assert sleeps == [0.5]


def test_a_commitment_that_landed_before_the_drop_is_not_sent_again(node, wallets, make_chain, sleeps):
    register_team(node, wallets)
    node.drop_after_apply = 1
    block = make_chain(wallets["miner"]).commit(NETUID, REF.encode())
    assert len(node.submitted) == 1
    assert block == node.subnets[NETUID].commitments[hotkey_of(wallets["miner"])]["block"]
    assert sleeps == [0.5]


def test_recommitting_identical_bytes_keeps_the_original_block(node, wallets, make_chain):
    register_team(node, wallets)
    chain = make_chain(wallets["miner"])
    first = chain.commit(NETUID, REF.encode())
    node.head += 50
    assert chain.commit(NETUID, REF.encode()) == first
    assert len(node.submitted) == 1
    other = REF.replace(":v1@", ":v2@").encode()
    assert chain.commit(NETUID, other) > first and len(node.submitted) == 2


def test_backoff_is_capped_and_bounded():
    assert list(Backoff(attempts=6, base=1.0, factor=2.0, cap=4.0).delays()) == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert list(Backoff(attempts=1).delays()) == []


# -- construction -----------------------------------------------------------------------------
def test_open_chain_builds_the_bittensor_adapter_for_a_network_name(node, wallets, tmp_path):
    miner = wallets["miner"]
    chain = open_chain("local", miner.name, miner.hotkey_str, miner.path, substrate=node)
    assert isinstance(chain, BittensorChain) and chain.network == "local"
    assert chain.hotkey == hotkey_of(miner)


def test_unknown_network_and_missing_wallet_are_one_line_errors(tmp_path):
    with pytest.raises(ChainError, match="unknown network 'mainnet'"):
        open_chain("mainnet", "w", "h", str(tmp_path))
    chain = open_chain("test", "nobody", "nokey", str(tmp_path))
    with pytest.raises(ChainError, match="wallet nobody/nokey has no readable hotkey") as info:
        chain.hotkey
    assert "\n" not in str(info.value)
