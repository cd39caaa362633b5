"""`subnet validator status [--json]`: what the validator has been doing, read from its store.

Leaderboard (the last round's miners), recent rounds, cache hits, Basilica spend, the last
weights sent and, in cloud mode, where the last round rented its GPUs and why. Works with no chain and no running validator: it only reads `SUBNET_HOME`.
Human tables fit 80 columns (`subnet.cli.tables`): image references are shortened, the score and
weight are never dropped, and every fault is shown with its reason.
"""

from __future__ import annotations

import json
import time
from typing import Any, Optional

import typer
from rich.console import Console

from subnet.cli.tables import leaderboard_table, rounds_table, short_ref  # noqa: F401 (short_ref: re-exported)
from subnet.cli.validator import validator_app
from subnet.config import NETUID_MAX, Settings
from subnet.compute.ledger import Spend
from subnet.validator.observability import leaderboard, ledger_spend_split
from subnet.state.files import StoreFile, find_subnet_stores
from subnet.state.store import Store
from subnet.state.identity import validator_identity


@validator_app.command("status")
def status(
    netuid: Optional[int] = typer.Option(None, "--netuid", min=0, max=NETUID_MAX, help="Subnet uid (default: the most recent store)"),
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
        "leaderboard": (board := leaderboard(chosen.path)),
        "compute": board.get("compute") or None,  # `--mode cloud`: the last round's provider choice
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
    llm = any("llm_usd" in m for m in board["miners"]) and board.get("challenge") != "matrix-chain"
    console.print(leaderboard_table(board["miners"], title="leaderboard (* = scored from cache)", llm=llm))
    console.print(rounds_table(payload["recent_rounds"], time.time()))
    cache = payload["cache"]
    total = cache["evaluated"] + cache["cached"]
    rate = f"{cache['cached'] / total:.0%}" if total else "-"
    console.print(f"cache hits {cache['cached']} of {total} ({rate}) · spend {payload['spend']}", markup=False)
    last = payload["last_weights"]
    if last:
        confirmed = f", confirmed at {last['confirmed_block']}" if last["confirmed_block"] else ""
        console.print(f"last weights: {last['status']} at block {last['block']} for "
                      f"{len(last['weights'])} uids{confirmed}", markup=False)
    console.print(burn_line(board), markup=False)
    if board.get("compute"):
        console.print(compute_line(board["compute"]), markup=False, soft_wrap=True)


def compute_line(choice: dict[str, Any]) -> str:
    """`--mode cloud`: the last round's best box and why, miners placed per provider, any provider left out."""
    text = f"last round's best GPU: {choice.get('offer')}, {choice.get('why')}"  # why: $/h × (start + busy) = $/eval
    placed = choice.get("placed") or {}  # miners per provider: each miner took the best box left
    if placed:
        text += "; placed " + ", ".join(f"{n} on {name}" for name, n in sorted(placed.items()))
    return text + "".join(f"; {name} left out: {why}" for name, why in (choice.get("left_out") or {}).items())


def burn_line(board: dict[str, Any]) -> str:
    """Where weight goes when nobody earns (and SUBNET_BURN_SHARE), as the last round found it."""
    uid, who = board.get("burn_uid"), board.get("burn_target") or ""
    if uid is None:
        return f"burn uid: none ({who}); set SUBNET_BURN_UID" if who else "burn uid: not recorded yet"
    return f"burn uid: {uid} ({who})" if who else f"burn uid: {uid}"


def _spend(spent: Spend) -> dict[str, Any]:
    """The spend figure, and whether it is billed or an estimate (list price × time)."""
    return {"spend_usd": round(float(spent.total), 6), "spend_estimated_usd": round(float(spent.estimated), 6),
            "spend_source": spent.source, "spend": spent.describe()}


def _choose(stores: list[StoreFile], netuid: Optional[int], network: Optional[str]) -> StoreFile | None:
    for store in stores:  # most recent first
        if (netuid is None or store.netuid == netuid) and (network is None or store.network == network):
            return store
    return None
