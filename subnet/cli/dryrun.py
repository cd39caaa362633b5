"""`subnet dry-run`: one full local round on the embedded defaults, with a leaderboard."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from subnet import aio
from subnet.cli import app
from subnet.config import Settings
from subnet.dryrun import default_env_dirs, dry_run
from subnet.runtime.factory import RuntimeUnavailable, choose_dry_run_mode, dry_run_runtime
from subnet.validator.report import RoundReport


class Mode(str, Enum):
    auto = "auto"
    process = "process"
    docker = "docker"
    basilica = "basilica"


@app.command("dry-run")
def dry_run_command(
    env: Optional[List[Path]] = typer.Option(None, "--env", help="Env folder (repeatable); default: every folder in envs/"),
    mode: Mode = typer.Option(Mode.auto, "--mode", help="Runtime: auto picks docker when a daemon answers, else process"),
    tasks: Optional[int] = typer.Option(None, "--tasks", min=1, help="Tasks per miner"),
    concurrency: Optional[int] = typer.Option(None, "--concurrency", min=1, help="Calls in flight overall"),
    n: Optional[int] = typer.Option(None, "--n", min=8, help="Matrix size"),
    depth: Optional[int] = typer.Option(None, "--depth", min=1, help="Layers in the chain"),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=0.1, help="Deadline per call, seconds"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables"),
) -> None:
    """Register each env as a miner on a temporary devchain, run one round, print the leaderboard."""
    overrides = {"tasks": tasks, "concurrency": concurrency, "n": n, "depth": depth, "call_timeout": timeout}
    settings = Settings().model_copy(update={k: v for k, v in overrides.items() if v is not None})
    env_dirs = [p.resolve() for p in env] if env else default_env_dirs()
    err = Console(stderr=True, soft_wrap=True)
    if not env_dirs:
        err.print("[red]error:[/] no env folders: pass --env DIR or run from a checkout with envs/")
        raise typer.Exit(2)
    chosen, why = choose_dry_run_mode(mode.value, env_dirs)
    if why:
        err.print(f"[yellow]note:[/] {why}")
    try:
        runtime = dry_run_runtime(chosen, settings)
    except RuntimeUnavailable as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2)
    try:
        report = _run_with_progress(env_dirs, runtime, settings, err)
    finally:
        getattr(runtime, "close", lambda: None)()
    if as_json:
        sys.stdout.write(json.dumps(report.to_json()) + "\n")
    else:
        print_report(report, Console())


def _run_with_progress(env_dirs, runtime, settings: Settings, console: Console) -> RoundReport:
    total = len(env_dirs) * settings.tasks
    columns = (TextColumn("[bold]round"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        job = bar.add_task("tasks", total=total)
        return aio.run(dry_run(env_dirs, runtime, settings, lambda _s, _o: bar.advance(job)))


def print_report(report: RoundReport, console: Console) -> None:
    if report.skipped:
        console.print(report.skipped, markup=False)
        return
    table = Table(title=f"{report.challenge} · {report.mode} · {report.tasks_per_miner} tasks per miner")
    for column in ("uid", "env", "verified", "accuracy", "p50 ms", "score", "weight", "faults"):
        left = column in ("env", "faults")
        table.add_column(column, justify="left" if left else "right", no_wrap=column == "env")
    for m in sorted(report.miners, key=lambda m: -m.weight):
        faults = ", ".join(f"{k}×{v}" for k, v in m.faults.items()) or "-"
        p50 = f"{m.latency_ms_p50:.1f}" if m.latency_ms_p50 is not None else "-"
        table.add_row(str(m.uid), m.env, f"{m.verified}/{m.tasks}", f"{m.accuracy:.2f}", p50,
                      f"{m.score:.3f}", f"{m.weight:.3f}", faults)
    console.print(table)
    for m in report.miners:
        if m.reason:
            console.print(f"  uid {m.uid} ({m.env}): {m.reason}", style="dim", markup=False)
    for r in report.rejected:
        console.print(f"  ignored commitment of {r['hotkey']}: {r['reason']}", style="yellow", markup=False)
    console.print(f"weights {report.weights_set} · round took {report.wall_s:.1f}s")
