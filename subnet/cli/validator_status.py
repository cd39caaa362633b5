"""`subnet validator status [--json]`: what the validator has been doing, read from its store.

Leaderboard (the last round's miners), recent rounds, cache hits, Basilica spend and the last
weights sent. Works with no chain and no running validator: it only reads `SUBNET_HOME`.
Human tables fit 80 columns: image references are shortened, the score column is never dropped.
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from subnet.cli.validator import validator_app
from subnet.config import Settings
from subnet.compute.ledger import Spend
from subnet.validator.observability import leaderboard, ledger_spend_split
from subnet.state.files import StoreFile, find_subnet_stores
from subnet.state.store import Store
from subnet.state.identity import validator_identity


def short_ref(ref: str, width: int = 28) -> str:
    """`ghcr.io/acme/env:tag@sha256:<64 hex>` → `acme/env@3f2a9c1b` (at most `width` chars)."""
    name, _, digest = ref.partition("@")
    name = name.rsplit(":", 1)[0] if ":" in name.rsplit("/", 1)[-1] else name
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]  # the registry host: the digest already pins the content
    short = "/".join(parts)
    tail = f"@{digest.split(':', 1)[-1][:8]}" if digest else ""
    room = max(4, width - len(tail))
    if len(short) > room:
        short = "…" + short[-(room - 1):]
    return short + tail


def leaderboard_table(miners: list[dict[str, Any]], title: str = "") -> Table:
    table = Table(title=title or None, expand=False)
    for column in ("uid", "miner", "ok", "p50 ms", "score", "weight", "faults"):
        right = column not in ("miner", "faults")
        # The score and weight columns never shrink away; the faults column gives way first.
        table.add_column(column, justify="right" if right else "left", no_wrap=column != "faults",
                         overflow="ellipsis", max_width=28 if column == "miner" else None)
    for m in miners:
        faults = ", ".join(f"{k}×{v}" for k, v in (m.get("faults") or {}).items()) or "-"
        p50 = m.get("latency_ms_p50")
        cached = "*" if m.get("cached") else ""
        table.add_row(str(m["uid"]), short_ref(m.get("env") or m.get("digest", ""), width=27) + cached,
                      f"{m.get('verified', 0)}/{m.get('tasks', 0)}", f"{p50:.1f}" if p50 is not None else "-",
                      f"{m.get('score', 0):.3f}", f"{m.get('weight', 0):.3f}", faults)
    return table


@validator_app.command("status")
def status(
    netuid: Optional[int] = typer.Option(None, "--netuid", help="Subnet uid (default: the most recent store)"),
    network: Optional[str] = typer.Option(None, "--network", help="Network name as the validator was run with"),
    rounds: int = typer.Option(5, "--rounds", min=1, help="Recent rounds to show"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
) -> None:
    """Show the validator's leaderboard, recent rounds, cache hits, spend and last weights."""
    settings = Settings()
    chosen = _choose(find_subnet_stores(settings.home), netuid, network)
    if chosen is None:
        payload = {"home": str(settings.home), "store": None, "message": "no validator state yet"}
        typer.echo(json.dumps(payload) if as_json else f"no validator state under {settings.home} yet")
        return
    payload = collect_status(chosen, settings, rounds)
    if as_json:
        typer.echo(json.dumps(payload))
    else:
        print_status(payload, Console())


def collect_status(chosen: StoreFile, settings: Settings, rounds: int = 5) -> dict[str, Any]:
    store = Store(chosen.path)
    try:
        recent = store.recent_rounds(rounds)
        cache = store.cache_totals()
        last = store.last_weights()
    finally:
        store.close()
    return {
        "home": str(settings.home),
        "store": str(chosen.path),
        "network": chosen.network,
        "network_id": chosen.network_id,
        "netuid": chosen.netuid,
        "leaderboard": leaderboard(chosen.path),
        "recent_rounds": recent,
        "cache": cache,
        **_spend(ledger_spend_split(settings.ledger_path, validator_identity(settings.home))),
        "last_weights": None if last is None else {
            "round": last.round_id, "block": last.block, "status": last.status,
            "weights": {str(k): round(v, 6) for k, v in sorted(last.weights.items())},
            "confirmed_block": last.confirmed_block,
        },
    }


def print_status(payload: dict[str, Any], console: Console) -> None:
    board = payload["leaderboard"]
    console.print(f"{payload['network']} · netuid {payload['netuid']} · round {board.get('round')} "
                  f"at block {board.get('block')}", markup=False)
    console.print(leaderboard_table(board["miners"], title="leaderboard (* = scored from cache)"))
    table = Table(title="recent rounds")
    for column in ("round", "block", "ran", "cached", "age", "weights"):
        table.add_column(column, justify="left" if column == "weights" else "right",
                         overflow="ellipsis", no_wrap=column != "weights")
    now = time.time()
    for r in payload["recent_rounds"]:
        age = f"{(now - r['started_at']) / 60:.0f}m" if r.get("started_at") else "-"
        table.add_row(str(r["round"]), str(r["block"]), str(r.get("evaluated") or 0), str(r.get("cached") or 0),
                      age, r.get("weights") or (f"abandoned: {r['abandoned']}" if r.get("abandoned") else "(unfinished)"))
    console.print(table)
    cache = payload["cache"]
    total = cache["evaluated"] + cache["cached"]
    rate = f"{cache['cached'] / total:.0%}" if total else "-"
    console.print(f"cache hits {cache['cached']} of {total} ({rate}) · spend {payload['spend']}", markup=False)
    last = payload["last_weights"]
    if last:
        confirmed = f", confirmed at {last['confirmed_block']}" if last["confirmed_block"] else ""
        console.print(f"last weights: {last['status']} at block {last['block']} for "
                      f"{len(last['weights'])} uids{confirmed}", markup=False)


def _spend(spent: Spend) -> dict[str, Any]:
    """The spend figure, and whether it is billed or an estimate (list price × time)."""
    return {"spend_usd": round(float(spent.total), 6), "spend_estimated_usd": round(float(spent.estimated), 6),
            "spend_source": spent.source, "spend": spent.describe()}


def _choose(stores: list[StoreFile], netuid: Optional[int], network: Optional[str]) -> StoreFile | None:
    for store in stores:  # most recent first
        if (netuid is None or store.netuid == netuid) and (network is None or store.network == network):
            return store
    return None
