"""`subnet validator run`: read commitments, run miners' images, verify, score, set weights."""

from __future__ import annotations

import json
import logging
import sys
from enum import Enum
from typing import Optional

import typer
from rich.console import Console

from subnet import aio
from subnet.chain.base import ChainError
from subnet.chain.factory import DEVCHAIN, ensure_devchain_registered, open_chain
from subnet.chain.first_seen import FirstSeenStore
from subnet.cli import app
from subnet.config import Settings
from subnet.runtime.factory import RuntimeUnavailable, make_runtime
from subnet.store import Store
from subnet.validator.loop import ValidatorLoop
from subnet.validator.report import RoundReport

validator_app = typer.Typer(help="Run a validator.", no_args_is_help=True)
app.add_typer(validator_app, name="validator")


class ValidatorMode(str, Enum):
    docker = "docker"
    basilica = "basilica"


@validator_app.command("run")
def run(
    netuid: Optional[int] = typer.Option(None, "--netuid", help="Subnet uid (default: SUBNET_NETUID)"),
    network: Optional[str] = typer.Option(None, "--network", help="devchain, finney, test, local, or a ws:// URL"),
    wallet_name: str = typer.Option("default", "--wallet.name", help="Wallet (coldkey) name"),
    wallet_hotkey: str = typer.Option("default", "--wallet.hotkey", help="Hotkey name in the wallet"),
    wallet_path: Optional[str] = typer.Option(None, "--wallet.path", help="Wallets directory"),
    mode: ValidatorMode = typer.Option(ValidatorMode.docker, "--mode", help="Where miners' images run"),
    once: bool = typer.Option(False, "--once", help="Run one round, then exit"),
    interval: float = typer.Option(600.0, "--interval", min=1.0, help="Seconds between rounds"),
    as_json: bool = typer.Option(False, "--json", help="Print each round's report as one JSON line"),
) -> None:
    """Run validator rounds until stopped (or once with --once)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Actor call otherwise
    base = Settings()
    settings = base.model_copy(update={"netuid": base.netuid if netuid is None else netuid,
                                       "network": network or base.network})
    err = Console(stderr=True, soft_wrap=True)
    devchain = settings.network == DEVCHAIN
    try:
        runtime = make_runtime(mode.value, settings, allow_local=devchain)
        chain = open_chain(settings.network, wallet_name, wallet_hotkey, wallet_path, settings)
        if devchain:
            uid, new = ensure_devchain_registered(chain, settings.netuid)
            if new:
                err.print(f"registered {chain.hotkey} on the devchain as uid {uid}")
    except (RuntimeUnavailable, ChainError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1)
    store = Store(settings.store_path)
    loop = ValidatorLoop(chain, runtime, settings, store, FirstSeenStore.from_settings(settings), allow_local=devchain)

    def report(r: RoundReport) -> None:
        if as_json:
            sys.stdout.write(json.dumps(r.to_json()) + "\n")
            sys.stdout.flush()
        else:
            _print_summary(r, Console())

    try:
        aio.run(loop.run_forever(interval, report, once=once))
    except ChainError as exc:
        err.print(f"[red]error:[/] chain: {exc}")
        raise typer.Exit(1)
    except KeyboardInterrupt:
        err.print("stopped")
    finally:
        store.close()


def _print_summary(report: RoundReport, console: Console) -> None:
    from subnet.cli.dryrun import print_report

    print_report(report, console)
