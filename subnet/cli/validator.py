"""`subnet validator run`: read commitments, run miners' images, verify, score, set weights.

Exit codes: 0 done or stopped by SIGTERM/SIGINT (one line says what was abandoned), 1 an error
(one line), 2 another validator holds this SUBNET_HOME.
"""

from __future__ import annotations

import json
import logging
import sqlite3
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
from subnet.home_lock import HomeBusy, HomeLock
from subnet.runtime.factory import RuntimeUnavailable, make_runtime
from subnet.state_db import StateError, check_integrity, describe
from subnet.store import Store
from subnet.validator.loop import ValidatorLoop
from subnet.validator.report import RoundReport
from subnet.validator.shutdown import StoppedEarly, serve, stop_before_serving

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
    stop_before_serving()
    try:
        _serve(settings, mode, wallet_name, wallet_hotkey, wallet_path, once, interval, as_json, err)
    except StoppedEarly as exc:
        err.print(str(exc))


def _serve(settings: Settings, mode: "ValidatorMode", wallet_name: str, wallet_hotkey: str,
           wallet_path: Optional[str], once: bool, interval: float, as_json: bool, err: Console) -> None:
    devchain = settings.network == DEVCHAIN
    try:
        home_lock = HomeLock(settings.home).acquire()  # held until the process ends
    except HomeBusy as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    store = _open_store(settings, err)
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
    except sqlite3.Error as exc:  # the devchain's file
        err.print(f"[red]error:[/] {describe(exc, settings.devchain_path)}")
        raise typer.Exit(1)
    loop = ValidatorLoop(chain, runtime, settings, store, FirstSeenStore.from_settings(settings), allow_local=devchain)

    def report(r: RoundReport) -> None:
        if as_json:
            sys.stdout.write(json.dumps(r.to_json()) + "\n")
            sys.stdout.flush()
        else:
            _print_summary(r, Console())

    try:
        stopped = aio.run(serve(loop, interval, report, once, settings.stop_grace))
        written = bool(stopped) or loop.validator.results.flush()  # --once: a last try to write
    except ChainError as exc:
        err.print(f"[red]error:[/] chain: {exc}")
        raise typer.Exit(1)
    except StateError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1)
    finally:
        getattr(runtime, "close", lambda: None)()
        store.close()
        home_lock.release()
    if stopped:
        err.print(stopped)
    elif not written:
        err.print(f"[red]error:[/] results of round(s) {', '.join(map(str, loop.unwritten_rounds()))} "
                  f"could not be written to {settings.store_path} (see the log line above)")
        raise typer.Exit(1)


def _open_store(settings: Settings, err: Console) -> Store:
    """The state store, checked: a damaged file is named with what to do; runs a crash left
    unfinished are marked abandoned (never counted)."""
    try:
        check_integrity(settings.store_path)
        store = Store(settings.store_path, busy_timeout=settings.state_busy_timeout)
        abandoned = store.abandon_unfinished("the validator stopped mid-round (crash or kill)")
    except (StateError, sqlite3.Error) as exc:
        why = exc if isinstance(exc, StateError) else describe(exc, settings.store_path)
        err.print(f"[red]error:[/] {why}")
        raise typer.Exit(1)
    if abandoned:
        logging.getLogger(__name__).warning("round(s) %s had no end (crash or kill): marked abandoned",
                                            ", ".join(map(str, abandoned)))
    return store


def _print_summary(report: RoundReport, console: Console) -> None:
    from subnet.cli.dryrun import print_report

    print_report(report, console)
