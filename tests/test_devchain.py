import pytest

from subnet.chain.base import NotRegistered, WeightsRateLimited
from subnet.chain.devchain import DevChain


def test_register_commit_read_back_with_blocks(tmp_path):
    chain = DevChain(tmp_path / "c.sqlite", hotkey="v")
    assert chain.register(1, "v", validator_permit=True) == 0
    assert chain.register(1, "m") == 1
    assert chain.register(1, "m") == 1  # idempotent
    block = chain.as_hotkey("m").commit(1, b"hello")
    (c,) = chain.commitments(1)
    assert (c.hotkey, c.uid, c.block, c.data) == ("m", 1, block, b"hello")
    assert [n.uid for n in chain.neurons(1)] == [0, 1]
    assert chain.neurons(1)[0].validator_permit


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
