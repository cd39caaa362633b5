"""The usual Bittensor neuron flags, translated to `subnet` CLI options.

`neurons/miner.py` and `neurons/validator.py` accept what operators already type for other
subnets (`--netuid`, `--subtensor.network`, `--subtensor.chain_endpoint`, `--wallet.name`,
`--wallet.hotkey`, `--wallet.path`) and hand everything else through to the `subnet` command.
"""

from __future__ import annotations

import argparse
import logging
from typing import Sequence


def add_bittensor_flags(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--netuid", type=netuid_arg, help="Subnet uid (default: SUBNET_NETUID)")
    parser.add_argument(
        "--subtensor.network", dest="network", default="finney",
        help="finney (default), test, local, devchain or a ws:// URL"
    )
    parser.add_argument(
        "--subtensor.chain_endpoint", dest="chain_endpoint", help="ws:// URL; overrides --subtensor.network"
    )
    parser.add_argument("--wallet.name", dest="wallet_name", help="Wallet (coldkey) name")
    parser.add_argument("--wallet.hotkey", dest="wallet_hotkey", help="Hotkey name in the wallet")
    parser.add_argument("--wallet.path", dest="wallet_path", help="Wallets directory")
    for level in ("info", "debug", "trace"):
        parser.add_argument(f"--logging.{level}", dest=f"log_{level}", action="store_true", help=argparse.SUPPRESS)
    return parser


def netuid_arg(text: str) -> int:
    """A subnet uid: an integer from 0 to 65535 (a u16 on chain)."""
    from subnet.config import NETUID_MAX

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value <= NETUID_MAX:
        raise argparse.ArgumentTypeError(f"{value} is not a subnet uid (0 to {NETUID_MAX})")
    return value


def configure_logging(ns: argparse.Namespace) -> None:
    """Honour the `--logging.*` flags operators carry over from other subnets."""
    if ns.log_debug or ns.log_trace:
        logging.basicConfig(level=logging.DEBUG)
    elif ns.log_info:
        logging.basicConfig(level=logging.INFO)


def subnet_options(ns: argparse.Namespace) -> list[str]:
    """The `subnet` options equivalent to the parsed Bittensor flags (unset flags are left out)."""
    network = ns.chain_endpoint or ns.network
    pairs: Sequence[tuple[str, object]] = (
        ("--netuid", ns.netuid),
        ("--network", network),
        ("--wallet.name", ns.wallet_name),
        ("--wallet.hotkey", ns.wallet_hotkey),
        ("--wallet.path", ns.wallet_path),
    )
    return [item for flag, value in pairs if value is not None for item in (flag, str(value))]
