"""Build the `Chain` adapter that command-line options name.

`devchain` is the embedded SQLite chain at `Settings().devchain_path`; on it an identity is just a
string, and a wallet is named `WALLET/HOTKEY` (e.g. `miner/default`) so the same flags work on
both kinds of chain. Anything else (finney, test, local, archive, devnet, ws:// or wss:// URL) is
a bittensor network reached through the SDK with `bt.Wallet(name, hotkey, path)`.
"""

from __future__ import annotations

from typing import Any

from subnet.chain.base import Chain, NotRegistered
from subnet.config import Settings

DEVCHAIN = "devchain"


def devchain_hotkey(wallet_name: str, wallet_hotkey: str) -> str:
    """The devchain identity of a wallet's hotkey."""
    return f"{wallet_name}/{wallet_hotkey}"


def open_chain(
    network: str,
    wallet_name: str = "default",
    wallet_hotkey: str = "default",
    wallet_path: str | None = None,
    settings: Settings | None = None,
    *,
    substrate: Any = None,
) -> Chain:
    """The adapter for `network`, signing as the wallet's hotkey.

    `substrate` (bittensor networks only) swaps the SDK's RPC backend for any implementation of
    its `Substrate` protocol, e.g. a local stand-in for the chain node.
    """
    settings = settings or Settings()
    if network == DEVCHAIN:
        from subnet.chain.devchain import DevChain

        return DevChain(settings.devchain_path, hotkey=devchain_hotkey(wallet_name, wallet_hotkey))

    # Imported here so devchain users and dry runs never pay for the SDK import.
    import bittensor as bt
    from bittensor.wallet import DEFAULT_WALLET_PATH

    from subnet.chain.bittensor_chain import BittensorChain

    wallet = bt.Wallet(wallet_name, wallet_hotkey, wallet_path or DEFAULT_WALLET_PATH)
    return BittensorChain(network, wallet, substrate=substrate)


def wallet_hotkey_address(network: str, wallet_name: str = "default", wallet_hotkey: str = "default",
                          wallet_path: str | None = None) -> str:
    """The address a wallet's hotkey signs as on `network`, read without touching the chain."""
    if network == DEVCHAIN:
        return devchain_hotkey(wallet_name, wallet_hotkey)
    import bittensor as bt
    from bittensor.wallet import DEFAULT_WALLET_PATH

    from subnet.chain.bittensor_chain import BittensorChain

    wallet = bt.Wallet(wallet_name, wallet_hotkey, wallet_path or DEFAULT_WALLET_PATH)
    return BittensorChain(network, wallet).hotkey


def ensure_devchain_registered(chain: Any, netuid: int, validator_permit: bool = False) -> tuple[int, bool]:
    """Register the devchain adapter's hotkey on `netuid` if needed: (uid, newly registered).

    Only the devchain registers for free (with a validator permit when asked); a real network
    needs `btcli subnets register`.
    """
    if getattr(chain, "network", None) != DEVCHAIN:
        raise NotRegistered(f"hotkey {chain.hotkey} is not registered on netuid {netuid}")
    for neuron in chain.neurons(netuid):
        if neuron.hotkey == chain.hotkey:
            if validator_permit and not neuron.validator_permit:
                chain.register(netuid, chain.hotkey, validator_permit=True)
            return neuron.uid, False
    return chain.register(netuid, chain.hotkey, validator_permit=validator_permit), True
