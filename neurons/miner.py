"""Miner entry point in the Bittensor convention.

    python neurons/miner.py --image REGISTRY/REPO:TAG@sha256:<64 hex> \
        --netuid 7 --subtensor.network finney --wallet.name miner --wallet.hotkey default

Equivalent to `subnet miner commit IMAGE --netuid 7 --network finney --wallet.name miner ...`;
any other option (`--dry-run`, `--json`) is passed through unchanged.
"""

from __future__ import annotations

import argparse
import sys


def build_args(argv: list[str]) -> list[str]:
    from subnet.cli.neuron_flags import add_bittensor_flags, configure_logging, subnet_options

    parser = add_bittensor_flags(argparse.ArgumentParser(description="Commit this miner's image on chain."))
    parser.add_argument("--image", required=True, help="Digest-pinned image reference to commit")
    ns, passthrough = parser.parse_known_args(argv)
    configure_logging(ns)
    return ["commit", ns.image, *subnet_options(ns), *passthrough]


def main(argv: list[str] | None = None) -> None:
    args = build_args(sys.argv[1:] if argv is None else argv)
    from subnet.cli import miner_chain  # noqa: F401  (registers `commit`)
    from subnet.cli import run
    from subnet.cli.miner_group import miner_app

    run(miner_app, args, "subnet miner")


if __name__ == "__main__":
    main()
