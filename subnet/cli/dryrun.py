"""`subnet dry-run`: full local rounds on the embedded defaults, with a leaderboard and, over
several rounds, each env's latency and score spread."""

from __future__ import annotations

import errno
import json
import sys
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column

from subnet.util import aio
from subnet.cli.app import app
from subnet.cli.steps import RichSteps
from subnet.cli.tables import leaderboard_table, spread_table
from subnet.config import Settings
from subnet.dryrun.run import default_env_dirs, dry_run_rounds, runnable_defaults, spread
from subnet.dryrun.runtimes import choose_dry_run_mode, dry_run_runtime
from subnet.protocol import InfraFault
from subnet.runtime.factory import RuntimeUnavailable, fit_refusal
from subnet.util.progress import listening
from subnet.util.text import os_error
from subnet.validator.challenge_choice import UnknownChallenge
from subnet.validator.llm import LlmUnavailable
from subnet.validator.report import RoundReport


class Mode(str, Enum):
    auto = "auto"
    process = "process"
    docker = "docker"
    basilica = "basilica"
    vast = "vast"
    cloud = "cloud"


_DEFAULTS = Settings.model_fields


def _default(name: str) -> str:
    return str(_DEFAULTS[name].default)


@app.command("dry-run")
def dry_run_command(
    env: Optional[List[Path]] = typer.Option(None, "--env", help="Env folder (repeatable) (default: every folder in envs/)"),
    mode: Mode = typer.Option(Mode.auto, "--mode", help="Runtime: auto picks docker when a daemon answers, else process"),
    rounds: int = typer.Option(1, "--rounds", min=1, help="Independent rounds; >1 adds each env's latency and score spread"),
    tasks: Optional[int] = typer.Option(None, "--tasks", min=1, show_default=False,
                                        help=f"Tasks per miner (default {_default('tasks')}, as the validator; SUBNET_TASKS)"),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", min=1, show_default=False,
                                              help=f"Calls in flight overall (default {_default('concurrency')}, as the validator)"),
    n: Optional[int] = typer.Option(None, "--n", min=8, show_default=False,
                                    help=f"Matrix size (default {_default('dry_run_n')}; the validator runs {_default('n')}; SUBNET_DRY_RUN_N)"),
    depth: Optional[int] = typer.Option(None, "--depth", min=1, show_default=False,
                                        help=f"Layers (default {_default('dry_run_depth')}; the validator runs {_default('depth')}; SUBNET_DRY_RUN_DEPTH)"),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.1, show_default=False,
                                            help=f"Deadline per call, seconds (default {_default('call_timeout')}, as the validator)"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables"),
    llm_upstream: Optional[str] = typer.Option(
        None, "--llm-upstream", metavar="URL",
        help="OpenAI-compatible service for LLM envs (key: SUBNET_LLM_API_KEY) (default: the local twin, no key)"),
) -> None:
    """Register each env as a miner on a temporary devchain, run rounds, print the leaderboard."""
    base = Settings()
    overrides = {"n": n or base.dry_run_n, "depth": depth or base.dry_run_depth,
                 "tasks": tasks, "concurrency": concurrency, "call_timeout": timeout}
    settings = base.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    err = Console(stderr=True, soft_wrap=True)
    env_dirs = _env_folders(env, err) if env else default_env_dirs()
    if not env_dirs:
        err.print("[red]error:[/] no env folders: pass --env DIR or run from a checkout with envs/")
        raise typer.Exit(2)
    chosen, why = choose_dry_run_mode(mode.value, env_dirs)
    if why:
        err.print(f"[yellow]note:[/] {why}")
    if not env:
        env_dirs, notes = runnable_defaults(env_dirs, chosen)
        for note in notes:
            err.print(f"note: {note}", style="yellow", markup=False)
    try:
        runtime = dry_run_runtime(chosen, settings)
        refusal = fit_refusal(runtime, settings, dry_run=True) if chosen == "docker" else ""
    except (RuntimeUnavailable, InfraFault) as exc:
        err.print(f"error: {exc}", style="red", markup=False)
        raise typer.Exit(2)
    if refusal:
        getattr(runtime, "close", lambda: None)()
        err.print(f"error: {refusal}", markup=False)
        raise typer.Exit(2)
    try:
        reports = _run_with_progress(env_dirs, runtime, settings, rounds, err, llm_upstream)
        rented = runtime.summary() if hasattr(runtime, "summary") else None  # `--mode basilica`: what it cost
    except (UnknownChallenge, LlmUnavailable) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2)
    finally:
        getattr(runtime, "close", lambda: None)()  # the Basilica twin of `--mode basilica`
    if as_json:
        # One report as it always was; several (rounds, or envs of several challenges) as a list.
        data = reports[0].to_json() if len(reports) == 1 else {"rounds": [r.to_json() for r in reports],
                                                                 "spread": spread(reports)}
        sys.stdout.write(json.dumps(data | ({rented.get("provider", "basilica"): rented} if rented else {})) + "\n")
        return
    console = Console()
    for report in reports:
        print_report(report, console)
    if len(reports) > len({r.challenge for r in reports}):
        print_spread(spread(reports), console)
    if rented:
        print_rented(rented, console)


def print_rented(r: dict, console: Console) -> None:
    if "providers" in r:  # `--mode cloud`: what each twin rented, then each round's choice
        for part in r["providers"].values():
            print_rented(part, console)
        for line in r["choices"]:
            console.print(f"cloud: {line}", markup=False, soft_wrap=True)
        return
    price = "-" if r["hourly_price"] is None else f"${r['hourly_price']:.2f}/h"
    provider = r.get("provider", "basilica")
    what = "instances" if provider == "vast" else "deployments"
    console.print(f"{provider}: {r['gpu_type'] or '-'} at {price} · {what} {r['deployments_created']} created, "
                  f"{r['deployments_deleted']} deleted, {r['deployments_left']} left · ${r['dollars']:.6f} "
                  f"({r['dollars_source']})", markup=False, soft_wrap=True)


def _env_folders(paths: List[Path], err: Console) -> list[Path]:
    """Each --env as a resolved folder; a missing one, a file or a symlink loop ends the command
    with one line (exit 2), before anything is registered or started."""
    folders = []
    for path in paths:
        try:
            resolved = path.resolve(strict=True)
            problem = "" if resolved.is_dir() else "not a folder"
        except RuntimeError:  # Python < 3.13 says "Symlink loop" this way
            problem = "a symlink loop"
        except OSError as exc:
            problem = {errno.ENOENT: "no such folder", errno.ELOOP: "a symlink loop"}.get(exc.errno, os_error(exc))
        if problem:
            err.print(f"error: --env {path}: {problem}", markup=False)
            raise typer.Exit(2)
        folders.append(resolved)
    return folders


def _run_with_progress(env_dirs, runtime, settings: Settings, rounds: int, console: Console,
                       llm_upstream: str | None = None) -> list[RoundReport]:
    """Rounds with a task bar and, on a terminal, a live line per image build; elsewhere each
    build step is one plain line on stderr."""
    total = len(env_dirs) * settings.tasks * rounds
    columns = (TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1)),
               BarColumn(bar_width=20), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        job = bar.add_task("tasks", total=total)
        steps = RichSteps(bar) if console.is_terminal else _plain_steps(console)
        with listening(steps):
            return aio.run(dry_run_rounds(env_dirs, runtime, settings, rounds, lambda _s, _o: bar.advance(job),
                                          llm_upstream))


def _plain_steps(console: Console):
    def show(who: str, what: str, done: bool) -> None:
        console.print(f"{who}: {what}", markup=False, highlight=False)

    return show


def print_spread(rows: list[dict], console: Console) -> None:
    console.print(spread_table(rows))


def print_report(report: RoundReport, console: Console) -> None:
    if report.skipped:
        console.print(report.skipped, markup=False)
        return
    title = f"{report.challenge} · {report.mode} · {report.tasks_per_miner} tasks per miner"
    miners = sorted((asdict(m) for m in report.miners), key=lambda m: (-m["weight"], m["uid"]))
    llm = any(m.get("llm_usd") for m in miners) or report.challenge != "matrix-chain"
    console.print(leaderboard_table(miners, title=title, llm=llm))
    for r in report.rejected:
        console.print(f"  ignored commitment of {r['hotkey']}: {r['reason']}", style="yellow", markup=False)
    console.print(f"weights {report.weights_set} · round took {report.wall_s:.1f}s", markup=False)
