"""`subnet validator run`: read commitments, run miners' images, verify, score, set weights.

Exit codes: 0 done or stopped by SIGTERM/SIGINT (one line says what was abandoned), 1 an error
(one line), 2 another validator holds this SUBNET_HOME, or the devchain was about to be used
silently for a real wallet.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import sys
from enum import Enum
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from subnet.util import aio
from subnet.chain.base import Chain, ChainError
from subnet.chain.factory import DEVCHAIN, ensure_devchain_registered, open_chain
from subnet.state.first_seen import FirstSeenStore
from subnet.chain.preflight import check_ready
from subnet.cli.app import app
from subnet.cli.steps import RichSteps
from subnet.config import NETUID_MAX, Settings
from subnet.protocol import InfraFault
from subnet.registry.policy import CachingResolver
from subnet.state.home_lock import HomeBusy, HomeLock
from subnet.validator.observability import configure_logging, start_observability
from subnet.runtime.factory import RuntimeUnavailable, fit_refusal, make_runtime
from subnet.state.files import legacy_state_path, open_subnet_store, subnet_state_path
from subnet.state.db import StateError, check_integrity, describe
from subnet.state.store import Store
from subnet.util.progress import listening
from subnet.util.text import one_line, os_error
from subnet.validator.admission import ImageInspector
from subnet.validator.challenge_choice import UnknownChallenge, make_challenge
from subnet.validator.llm import LlmUnavailable, llm_for
from subnet.validator.loop import RoundFailed, ValidatorLoop
from subnet.validator.report import RoundReport
from subnet.validator.shutdown import StoppedEarly, serve, stop_before_serving

validator_app = typer.Typer(help="Run a validator.", no_args_is_help=True)
app.add_typer(validator_app, name="validator")


class ValidatorMode(str, Enum):
    docker = "docker"
    basilica = "basilica"
    vast = "vast"
    cloud = "cloud"  # Basilica and/or Vast, whichever is cheapest per evaluation each round


@validator_app.command("run")
def run(
    netuid: Optional[int] = typer.Option(None, "--netuid", min=0, max=NETUID_MAX, help="Subnet uid (default: SUBNET_NETUID)"),
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
    base = Settings()
    configure_logging(base.log_json)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Actor call otherwise
    settings = base.model_copy(update={"netuid": base.netuid if netuid is None else netuid,
                                       "network": network or base.network})
    err = Console(stderr=True, soft_wrap=True)
    chosen = network is not None or "SUBNET_NETWORK" in os.environ or _env_file_sets_network()
    stop_before_serving()
    try:
        _serve(settings, chosen, mode, wallet_name, wallet_hotkey, wallet_path, once, interval, as_json, err)
    except StoppedEarly as exc:
        err.print(str(exc))


def _serve(settings: Settings, chosen: bool, mode: "ValidatorMode", wallet_name: str, wallet_hotkey: str,
           wallet_path: Optional[str], once: bool, interval: float, as_json: bool, err: Console) -> None:
    devchain = settings.network == DEVCHAIN
    refusal = implicit_devchain_refusal(devchain, chosen, wallet_name, wallet_hotkey, wallet_path)
    if refusal:
        err.print(f"error: {refusal}", markup=False)
        raise typer.Exit(2)
    if devchain and not chosen:
        err.print("note: no network chosen: using the local devchain (--network finney for the real one)", markup=False)
    try:
        home_lock = HomeLock(settings.home).acquire()  # held until the process ends
    except HomeBusy as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2)
    except OSError as exc:  # read-only, full, not a folder, no permission
        err.print(f"error: cannot use SUBNET_HOME {settings.home}: {os_error(exc)}", markup=False)
        raise typer.Exit(1)
    if devchain and not {"n", "depth"} & settings.model_fields_set:
        # The one-machine loop runs on a laptop: the production size needs a GPU (docs/challenge.md).
        settings = settings.model_copy(update={"n": settings.dry_run_n, "depth": settings.dry_run_depth})
        err.print(f"note: devchain: tasks at the dry-run size {settings.n}×{settings.depth} "
                  f"(SUBNET_N and SUBNET_DEPTH choose another, e.g. the production 12800×2)", markup=False)
    try:
        chain = open_chain(settings.network, wallet_name, wallet_hotkey, wallet_path, settings)
        if devchain:
            uid, new = ensure_devchain_registered(chain, settings.netuid, validator_permit=True)
            if new:
                err.print(f"registered {chain.hotkey} on the devchain as uid {uid}")
        check_ready(chain, settings.netuid, settings.version_key)  # before any runtime is built
        challenge = make_challenge(settings.challenge, settings.n, settings.depth)
        runtime = make_runtime(mode.value, settings, allow_local=devchain)
        sized = mode is ValidatorMode.docker and getattr(challenge, "needs_gpu", True)  # matrix sizes only
        refusal = fit_refusal(runtime, settings) if sized else ""
        if refusal:
            getattr(runtime, "close", lambda: None)()
            raise RuntimeUnavailable(refusal)
    except (RuntimeUnavailable, ChainError, InfraFault, OSError, UnknownChallenge) as exc:
        err.print(f"error: {one_line(str(exc), 800)}", markup=False)
        raise typer.Exit(1)
    except sqlite3.Error as exc:  # the devchain's file
        err.print(f"error: {describe(exc, settings.devchain_path)}", markup=False)
        raise typer.Exit(1)
    store = _open_store(settings, chain, err)
    try:
        observer = start_observability(settings, store)
        llm = llm_for(challenge, runtime, store.path, observer.metrics.registry)  # its key stays in this process
        inspector = ImageInspector.for_validator(store, settings, loopback_only=devchain, resolve=CachingResolver())
        loop = ValidatorLoop(chain, observer.wrap(runtime), settings, store, FirstSeenStore(store.path),
                             allow_local=devchain, observer=observer, inspector=inspector, llm=llm)
    except LlmUnavailable as exc:
        observer.close()
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1)
    except (OSError, StateError) as exc:  # e.g. a round-secret that is a folder, a metrics port in use
        err.print(f"error: {os_error(exc) if isinstance(exc, OSError) else exc}", markup=False)
        raise typer.Exit(1)

    def report(r: RoundReport) -> None:
        if as_json:
            sys.stdout.write(json.dumps(r.to_json()) + "\n")
            sys.stdout.flush()
        else:
            _print_summary(r, Console())

    try:
        with _step_display(err, settings.log_json):
            stopped = aio.run(serve(loop, interval, report, once, settings.stop_grace))
        written = bool(stopped) or loop.validator.results.flush()  # --once: a last try to write
    except ChainError as exc:
        err.print(f"error: chain: {one_line(str(exc), 400)}", markup=False)
        raise typer.Exit(1)
    except (StateError, RoundFailed, LlmUnavailable) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(1)
    finally:
        observer.close()
        getattr(runtime, "close", lambda: None)()
        store.close()
        home_lock.release()
    if stopped:
        err.print(stopped)
    elif not written:
        err.print(f"[red]error:[/] results of round(s) {', '.join(map(str, loop.unwritten_rounds()))} "
                  f"could not be written to {store.path} (see the log line above)")
        raise typer.Exit(1)


@contextlib.contextmanager
def _step_display(err: Console, json_logs: bool):
    """Image pulls as live lines on a terminal; elsewhere (or with JSON logs) as log lines."""
    if not err.is_terminal or json_logs:
        yield
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True) as progress:
        with listening(RichSteps(progress)):
            yield


def _open_store(settings: Settings, chain: Chain, err: Console) -> Store:
    """This subnet's state store, checked: a damaged file is named with what to do; rounds a crash
    left unfinished are marked abandoned (never counted)."""
    path = subnet_state_path(settings.home, chain.network_id(), settings.netuid)
    try:
        for candidate in (legacy_state_path(settings.home), path):  # the old file is read to migrate it
            if candidate.exists():
                check_integrity(candidate)
        store = open_subnet_store(settings.home, chain.network_id(), settings.network, settings.netuid,
                                  busy_timeout=settings.state_busy_timeout)
        abandoned = store.abandon_unfinished("the validator stopped mid-round (crash or kill)")
    except (StateError, sqlite3.Error, OSError) as exc:
        why = describe(exc, path) if isinstance(exc, sqlite3.Error) else exc
        err.print(f"error: {one_line(str(why), 400)}", markup=False)
        raise typer.Exit(1)
    if abandoned:
        logging.getLogger(__name__).warning("round(s) %s had no end (crash or kill): marked abandoned",
                                            ", ".join(map(str, abandoned)))
    return store


def implicit_devchain_refusal(devchain: bool, chosen: bool, wallet_name: str, wallet_hotkey: str,
                              wallet_path: Optional[str]) -> str:
    """Why the devchain must not be used silently: the network was not chosen and the wallet is a
    real bittensor wallet (its hotkey file exists) — its owner surely meant a real network."""
    if not devchain or chosen:
        return ""
    from bittensor.wallet import DEFAULT_WALLET_PATH

    root = Path(wallet_path or DEFAULT_WALLET_PATH).expanduser()
    if not (root / wallet_name / "hotkeys" / wallet_hotkey).exists():
        return ""
    return (f"no network chosen and {wallet_name}/{wallet_hotkey} is a real wallet: pass --network finney "
            f"(or test, or a ws:// URL), or --network devchain for the local chain")


def _env_file_sets_network() -> bool:
    env = Path(".env")
    return env.is_file() and any(line.strip().startswith("SUBNET_NETWORK=") for line in env.read_text().splitlines())


def _print_summary(report: RoundReport, console: Console) -> None:
    """The round as a table that fits 80 columns (shortened image references, score kept, every
    fault with its reason)."""
    from subnet.cli.tables import leaderboard_table

    data = report.to_json()
    miners = sorted(data["miners"], key=lambda m: (-m["weight"], m["uid"]))
    title = f"round {report.round_id} · block {report.block} · ran {report.evaluated}, cached {report.cached}"
    console.print(leaderboard_table(miners, title=title))
    for r in report.rejected:
        console.print(f"  ignored commitment of {r['hotkey']}: {r['reason']}", style="yellow", markup=False)
    if report.reveal:
        console.print(report.reveal, markup=False)
    console.print(f"weights {report.weights_set} · round took {report.wall_s:.1f}s", markup=False)
