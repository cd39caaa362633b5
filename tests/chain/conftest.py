"""Fixtures for the chain tests: real bittensor wallets in a temp dir, the node stand-in, adapters."""

from __future__ import annotations

import pytest

from subnet.chain.bittensor_chain import Backoff, BittensorChain

from .fake_substrate import FakeSubstrate

NETUID = 7
DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


@pytest.fixture(autouse=True)
def _isolated_sdk_cache(tmp_path, monkeypatch):
    # The SDK caches token symbols on connect; keep that out of the real home directory.
    monkeypatch.setenv("BTCLI_TOKEN_SYMBOLS_CACHE", str(tmp_path / "token_symbols.json"))


@pytest.fixture(scope="session")
def wallets(tmp_path_factory):
    """Two real bittensor wallets (unencrypted test keys), created once per session."""
    import bittensor as bt

    root = tmp_path_factory.mktemp("wallets")
    made = {}
    for name in ("validator", "miner"):
        wallet = bt.Wallet(name, "default", str(root))
        wallet.create_new_coldkey(use_password=False, suppress=True)
        wallet.create_new_hotkey(use_password=False, suppress=True)
        made[name] = wallet
    return made


@pytest.fixture
def node():
    fake = FakeSubstrate(block=1000)
    fake.add_subnet(NETUID, weights_rate_limit=100)
    return fake


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def make_chain(node, sleeps):
    def make(wallet, backoff: Backoff = Backoff(attempts=4, base=0.5, factor=2.0, cap=8.0)):
        return BittensorChain("local", wallet, substrate=node, backoff=backoff, sleep=sleeps.append)

    return make
