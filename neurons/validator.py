"""Validator entry point in the Bittensor convention.

    python neurons/validator.py --netuid 7 --subtensor.network finney \
        --wallet.name validator --wallet.hotkey default

Equivalent to `subnet validator run --netuid 7 --network finney --wallet.name validator ...`;
any other option is passed through to `subnet validator run` unchanged.
"""

from __future__ import annotations

import argparse
import sys


def build_args(argv: list[str]) -> list[str]:
    from subnet.cli.neuron_flags import add_bittensor_flags, configure_logging, subnet_options

    parser = add_bittensor_flags(argparse.ArgumentParser(description="Run the subnet validator."))
    ns, passthrough = parser.parse_known_args(argv)
    configure_logging(ns)
    return ["validator", "run", *subnet_options(ns), *passthrough]


def main(argv: list[str] | None = None) -> None:
    args = build_args(sys.argv[1:] if argv is None else argv)
    # Imported late: the validator's command tree pulls in the runtime and the chain SDK.
    from subnet.cli import main as subnet_main

    subnet_main(args)


if __name__ == "__main__":
    main()
