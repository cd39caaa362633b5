import pytest

from subnet.chain.base import NotRegistered, WeightsRateLimited
from subnet.chain.devchain import SUBNET_OWNER, DevChain


def test_register_commit_read_back_with_blocks(tmp_path):
    chain = DevChain(tmp_path / "c.sqlite", hotkey="v")
    assert chain.register(1, "v", validator_permit=True) == 1
    assert chain.register(1, "m") == 2
    assert chain.register(1, "m") == 2  # idempotent
    block = chain.as_hotkey("m").commit(1, b"hello")
    (c,) = chain.commitments(1)
    assert (c.hotkey, c.uid, c.block, c.data) == ("m", 2, block, b"hello")
    assert [n.uid for n in chain.neurons(1)] == [0, 1, 2]
    assert chain.neurons(1)[1].validator_permit


def test_the_subnet_owner_holds_uid_0_before_anyone_registers(tmp_path):
    chain = DevChain(tmp_path / "c.sqlite", hotkey="miner/default")
    assert chain.subnet_owner(1) is None  # no subnet yet
    assert chain.register(1, "miner/default") == 1
    assert chain.register(1, "validator/default", validator_permit=True) == 2
    owner = chain.neurons(1)[0]
    assert (owner.uid, owner.hotkey, owner.validator_permit) == (0, SUBNET_OWNER, False)
    assert chain.subnet_owner(1) == SUBNET_OWNER and chain.subnet_owner(2) is None
    assert chain.register(2, "miner/default") == 1  # every subnet has its own owner at uid 0


def test_a_devchain_from_before_owners_gets_its_owner_after_the_miners(tmp_path):
    path = tmp_path / "c.sqlite"
    old = DevChain(path)
    old._db.execute("INSERT INTO neurons VALUES (1, 0, 'miner/default', 0, 0)")  # as older versions left it
    old.close()
    chain = DevChain(path)
    assert chain.register(1, "validator/default", validator_permit=True) == 2
    assert chain.subnet_owner(1) == SUBNET_OWNER
    assert {n.hotkey: n.uid for n in chain.neurons(1)}[SUBNET_OWNER] == 1


def test_only_registered_hotkeys_write_and_commitments_are_capped(tmp_path):
    chain = DevChain(tmp_path / "c.sqlite", hotkey="stranger")
    with pytest.raises(NotRegistered):
        chain.commit(1, b"x")
    with pytest.raises(NotRegistered):
        chain.set_weights(1, {0: 1.0}, 1)
    chain.register(1, "stranger")
    with pytest.raises(ValueError, match="128"):
        chain.commit(1, b"x" * 129)


def test_weights_rate_limit(tmp_path):
    chain = DevChain(tmp_path / "c.sqlite", hotkey="v", weights_rate_limit=5)
    chain.register(1, "v")
    chain.set_weights(1, {0: 1.0}, version_key=3)
    with pytest.raises(WeightsRateLimited) as info:
        chain.set_weights(1, {0: 0.5}, version_key=3)
    assert 0 < info.value.retry_in_blocks <= 5
    assert chain.last_weights(1) == {0: 1.0}
    chain.advance(5)
    chain.set_weights(1, {0: 0.5}, version_key=3)
    assert chain.last_weights(1) == {0: 0.5}
