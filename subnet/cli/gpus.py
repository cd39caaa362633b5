"""`subnet gpus ...`: the cheapest allowed GPUs on Basilica and Vast.ai, rentals and the spend ledger.

`offers --provider basilica|vast|all [--explain]` ranks both markets by expected cost per evaluation
(gpus_providers.py); `list`, `rentals`, `stop` and `balance` take `--provider` too (default basilica,
as before the second provider came).

Every command takes `--json` (stdout is then always one JSON document; on failure
`{"error": {"message", "exit_code"}}`) and prints failures as one line on stderr. Exit codes:
0 ok, 1 other API error, 2 bad input/configuration, 3 nothing affordable under the cap,
4 token rejected, 5 not found, 6 Basilica unavailable (429/5xx/network after retries),
7 refused by the GPU policy.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from subnet.compute.basilica import BasilicaGPUClient, RemoteRental, RentOutcome
from subnet.cli import gpus_providers as multi
from subnet.compute.errors import EXIT_CONFIG, EXIT_NOTHING_AFFORDABLE, EXIT_UNAVAILABLE, BasilicaError
from subnet.compute.ledger import Ledger, Reconciliation, reconcile
from subnet.compute.policy import Offering, money
from subnet.compute.settings import ConfigError, load_settings

gpus_app = typer.Typer(
    help="Rent the cheapest GPU the policy allows on Basilica, and track every rental in the ledger.",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
ApiKeyOpt = Annotated[
    Optional[str], typer.Option("--api-key", help="Basilica token; overrides BASILICA_API_TOKEN.", show_default=False)
]
LedgerOpt = Annotated[
    Optional[Path], typer.Option("--ledger", help="State DB holding the ledger [default: $SUBNET_HOME/state.sqlite]")
]
VastKeyOpt = Annotated[
    Optional[str], typer.Option("--vast-key", help="Vast.ai key; overrides VAST_API_KEY.", show_default=False)
]
ProviderOpt = Annotated[str, typer.Option("--provider", help="basilica, vast or all.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would be rented and its price; rent nothing.")]

Action = Callable[[BasilicaGPUClient], tuple[Any, Callable[[Console], None]]]


@gpus_app.callback()
def _gpus() -> None:
    # Keeps `gpus` a group whatever else is registered.
    pass


def _run(
    action: Action, as_json: bool, api_key: str | None, ledger_path: Path | None, *, ledger_needed: bool = True
) -> None:
    """Build the client, run `action`, print JSON or the human view; map failures to exit codes."""
    ledger = None
    try:
        settings = load_settings(api_key=api_key)
        if ledger_needed:  # read-only commands do not create the state DB
            ledger = Ledger(ledger_path or _default_store())
        payload, render = action(BasilicaGPUClient(settings, ledger=ledger))
    except ConfigError as exc:
        _fail(str(exc), EXIT_CONFIG, as_json)
    except BasilicaError as exc:
        _fail(str(exc), exc.exit_code, as_json)
    finally:
        if ledger is not None:
            ledger.close()
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
    else:
        render(Console(soft_wrap=True))


def _default_store() -> Path:
    from subnet.config import Settings

    try:
        return Settings().ledger_path
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(f"SUBNET_{str(err['loc'][0]).upper()}: {err['msg']}") from None


def _fail(message: str, code: int, as_json: bool) -> None:
    typer.echo(f"error: {message}", err=True)
    if as_json:
        typer.echo(json.dumps({"error": {"message": message, "exit_code": code}}))
    raise typer.Exit(code)


# ---- commands ---------------------------------------------------------------------------------


@gpus_app.command("list")
def list_gpus(
    as_json: JsonOpt = False,
    show_all: Annotated[bool, typer.Option("--all", help="Also show refused offerings and why.")] = False,
    api_key: ApiKeyOpt = None,
    ledger: LedgerOpt = None,
    provider: ProviderOpt = "basilica",
    vast_key: VastKeyOpt = None,
) -> None:
    """List the offerings the policy allows, cheapest box first (prices are per whole box per hour)."""
    if provider != "basilica":
        return _offers(provider, False, multi.DEFAULT_BUSY_S, as_json, api_key, vast_key, ledger, per_hour=True)

    def action(client: BasilicaGPUClient):
        offerings = client.list_offerings()
        allowed = client.policy.allowed_offerings(offerings)
        if not show_all:
            return [o.to_json() for o in allowed], lambda c: c.print(_offer_table(allowed, client))
        ordered = allowed + sorted((o for o in offerings if o not in allowed), key=lambda o: (o.box_hourly_rate, o.id))
        rows = [o.to_json() | {"allowed": o in allowed, "reason": client.policy.refusal(o)} for o in ordered]
        return rows, lambda c: c.print(_offer_table(ordered, client, reasons=True))

    _run(action, as_json, api_key, ledger, ledger_needed=False)


@gpus_app.command("rent")
def rent(
    offering_id: Annotated[str, typer.Argument(help="Offering id from `subnet gpus list` (Vast: offer id).")],
    dry_run: DryRunOpt = False,
    as_json: JsonOpt = False,
    api_key: ApiKeyOpt = None,
    ledger: LedgerOpt = None,
    provider: ProviderOpt = "basilica",
    image: Annotated[Optional[str], typer.Option("--image", help="Vast: the Docker image the box runs.")] = None,
    vast_key: VastKeyOpt = None,
) -> None:
    """Rent one offering, if the policy allows it (ledger row written before the rental starts)."""
    if provider == "vast":
        return _rent_vast(offering_id, image, dry_run, as_json, vast_key, ledger)
    if provider != "basilica":
        _fail("rent takes --provider basilica or vast (one box, one provider)", EXIT_CONFIG, as_json)
    _run(lambda client: _rent_view(client.rent(offering_id, dry_run=dry_run)), as_json, api_key, ledger,
         ledger_needed=not dry_run)


@gpus_app.command("rent-cheapest")
def rent_cheapest(
    dry_run: DryRunOpt = False, as_json: JsonOpt = False, api_key: ApiKeyOpt = None, ledger: LedgerOpt = None
) -> None:
    """Rent the cheapest allowed box available now (exit 3 when nothing is under the cap)."""
    _run(lambda client: _rent_view(client.rent_cheapest(dry_run=dry_run)), as_json, api_key, ledger,
         ledger_needed=not dry_run)


@gpus_app.command("rentals")
def rentals(as_json: JsonOpt = False, api_key: ApiKeyOpt = None, ledger: LedgerOpt = None,
            provider: ProviderOpt = "basilica", vast_key: VastKeyOpt = None) -> None:
    """Tracked vs remote rentals, orphans on either side, and cost so far (Vast: our instances)."""
    if provider == "vast":
        return _vast_instances(as_json, vast_key)

    def action(client: BasilicaGPUClient):
        remote = client.list_rentals()
        entries = client.ledger.entries("rental")
        rec = reconcile(entries, remote)
        for entry, found in rec.tracked:  # a start whose answer was lost: the ledger catches up
            if entry.state == "starting":
                client.ledger.mark_active(entry.name, found.rental_id)
        payload = _rentals_json(rec, time.time())
        return payload, lambda c: _render_rentals(c, payload)

    _run(action, as_json, api_key, ledger)


@gpus_app.command("status")
def status(
    rental_id: Annotated[str, typer.Argument(help="Rental id or name.")],
    as_json: JsonOpt = False,
    api_key: ApiKeyOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """One rental as Basilica reports it, with the ledger's view."""

    def action(client: BasilicaGPUClient):
        remote = client.rental_status(rental_id)
        entry = client.ledger.find(remote.rental_id, "rental") or client.ledger.find(remote.name, "rental")
        payload = {"rental": remote.to_json(), "ledger": entry.to_json(time.time()) if entry else None}
        return payload, lambda c: c.print(_rental_table([remote], "Rental"))

    _run(action, as_json, api_key, ledger)


@gpus_app.command("stop")
def stop(
    rental_id: Annotated[str, typer.Argument(help="Rental id or name (Vast: instance id).")],
    as_json: JsonOpt = False,
    api_key: ApiKeyOpt = None,
    ledger: LedgerOpt = None,
    provider: ProviderOpt = "basilica",
    vast_key: VastKeyOpt = None,
) -> None:
    """Stop a rental (Vast: destroy an instance) and close its ledger row."""
    if provider == "vast":
        return _stop_vast(rental_id, as_json, vast_key, ledger)
    if provider != "basilica":
        _fail("stop takes --provider basilica or vast (one box, one provider)", EXIT_CONFIG, as_json)

    def action(client: BasilicaGPUClient):
        res = client.stop(rental_id)
        payload = {"rental_id": res.rental_id, "status": res.status,
                   "duration_hours": res.duration_hours, "total_cost": res.total_cost}
        return payload, lambda c: c.print(
            f"stopped {res.rental_id}: {res.status}, {res.duration_hours:.3f} h, total {money(res.total_cost or 0)}"
        )

    _run(action, as_json, api_key, ledger)


@gpus_app.command("balance")
def balance(as_json: JsonOpt = False, api_key: ApiKeyOpt = None, ledger: LedgerOpt = None,
            provider: ProviderOpt = "basilica", vast_key: VastKeyOpt = None) -> None:
    """The account balance in dollars."""
    if provider != "basilica":
        return _balances(provider, as_json, api_key, vast_key)

    def action(client: BasilicaGPUClient):
        res = client.balance()
        return res, lambda c: c.print(f"balance {money(res['balance'])} (as of {res['last_updated']})")

    _run(action, as_json, api_key, ledger, ledger_needed=False)


@gpus_app.command("offers")
def offers(
    provider: ProviderOpt = "all",
    explain: Annotated[bool, typer.Option("--explain", help="Say why each offer ranks where it does.")] = False,
    busy_s: Annotated[float, typer.Option("--busy-s", min=0, help="Expected seconds one evaluation keeps a box busy.")]
    = multi.DEFAULT_BUSY_S,
    as_json: JsonOpt = False,
    api_key: ApiKeyOpt = None,
    vast_key: VastKeyOpt = None,
    ledger: LedgerOpt = None,
) -> None:
    """Allowed offers across providers, cheapest expected cost per evaluation first."""
    _offers(provider, explain, busy_s, as_json, api_key, vast_key, ledger)


def _offers(provider: str, explain: bool, busy_s: float, as_json: bool, api_key: str | None,
            vast_key: str | None, ledger_path: Path | None, per_hour: bool = False) -> None:
    from subnet.compute.providers import select_providers

    try:
        names = select_providers(provider)
        learned = multi.learned_starts(ledger_path or _default_store())
    except (ValueError, ConfigError) as exc:
        _fail(str(exc), EXIT_CONFIG, as_json)
    policy = multi.policy_or_fail(lambda message, code: _fail(message, code, as_json))
    choice = asyncio.run(multi.rank_offers(names, policy, learned, busy_s, api_key=api_key, vast_key=vast_key,
                                           warn=lambda line: typer.echo(f"warning: {line}", err=True)))
    if len(choice.left_out) == len(names):
        _fail("no provider could be asked for offers (see the lines above)", EXIT_UNAVAILABLE, as_json)
    if per_hour:  # `list`: cheapest box per hour, as it always was
        choice.ranked.sort(key=lambda r: (r.offer.hourly_usd, r.offer.provider, r.offer.offer_id))
    if as_json:
        typer.echo(json.dumps(multi.choice_json(choice, policy, busy_s), indent=2))
    else:
        multi.render_choice(Console(soft_wrap=False), choice, policy, busy_s, explain)
    if not choice.ranked:
        raise typer.Exit(EXIT_NOTHING_AFFORDABLE)


def _vast_instances(as_json: bool, vast_key: str | None) -> None:
    multi.show_vast_instances(as_json, vast_key, lambda message, code: _fail(message, code, as_json))


def _stop_vast(instance_id: str, as_json: bool, vast_key: str | None, ledger_path: Path | None) -> None:
    fail = lambda message, code: _fail(message, code, as_json)  # noqa: E731
    try:
        path = ledger_path or _default_store()
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    multi.stop_vast(instance_id, as_json, vast_key, path, fail)


def _rent_vast(offer_id: str, image: str | None, dry_run: bool, as_json: bool, vast_key: str | None,
               ledger_path: Path | None) -> None:
    from subnet.config import Settings
    from subnet.state.identity import validator_identity

    fail = lambda message, code: _fail(message, code, as_json)  # noqa: E731
    try:
        path, home = ledger_path or _default_store(), Settings().home
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    multi.rent_vast(offer_id, image, dry_run, as_json, vast_key, path, validator_identity(home), fail)


def _balances(provider: str, as_json: bool, api_key: str | None, vast_key: str | None) -> None:
    multi.show_balances(provider, as_json, api_key, vast_key, lambda message, code: _fail(message, code, as_json))


# ---- views ------------------------------------------------------------------------------------


def _rent_view(out: RentOutcome) -> tuple[dict, Callable[[Console], None]]:
    o = out.offering
    what = f"{o.id} ({o.gpu_type} {o.market} x{o.gpu_count}) at {money(o.box_hourly_rate)}/h per box"
    payload = {"dry_run": out.dry_run, "offering": o.to_json(),
               "rental": out.rental.to_json() if out.rental else None,
               "ledger": out.entry.to_json(time.time()) if out.entry else None}
    if out.dry_run:
        return payload, lambda c: c.print(f"dry run: would rent {what}; nothing rented")
    r = out.rental
    return payload, lambda c: c.print(f"rented {what}: rental {r.rental_id} ({r.status}); ssh: {r.ssh_command or '-'}")


def _offer_table(offerings: list[Offering], client: BasilicaGPUClient, reasons: bool = False) -> Table:
    cap = money(client.policy.max_hourly_rate)
    table = Table(title=f"Basilica offerings (cap {cap}/h per box)")
    for col in ("id", "gpu", "count", "market", "$/gpu/h", "$/box/h", "provider", "region"):
        table.add_column(col, overflow="fold")  # ids are copied into `rent`: never ellipsize them
    if reasons:
        table.add_column("refused because")
    for o in offerings:
        row = [o.id, o.gpu_type, str(o.gpu_count), o.market, money(o.gpu_hourly_rate), money(o.box_hourly_rate),
               o.provider, o.region]
        table.add_row(*row, *([client.policy.refusal(o) or ""] if reasons else []))
    return table


def _rental_table(rentals: list[RemoteRental], title: str) -> Table:
    table = Table(title=title)
    for col in ("rental", "name", "gpu", "status", "$/h", "ip"):
        table.add_column(col, overflow="fold")
    for r in rentals:
        table.add_row(r.rental_id, r.name, f"{r.gpu_type} x{r.gpu_count}", r.status, money(r.hourly_cost),
                      r.ip_address or "-")
    return table


def _rentals_json(rec: Reconciliation, now: float) -> dict:
    tracked = [{"ledger": e.to_json(now), "remote": r.to_json()} for e, r in rec.tracked]
    remote_orphans = [r.to_json() | {"reason": why, "cost_so_far": _remote_cost(r, now)}
                      for r, why in rec.remote_orphans]
    gone = "no running rental with this id on Basilica"
    ledger_orphans = [e.to_json(now) | {"reason": gone} for e in rec.ledger_orphans]
    hourly = sum(t["ledger"]["hourly_rate"] or 0 for t in tracked) + sum(o["hourly_cost"] for o in remote_orphans)
    cost = sum(t["ledger"]["cost_so_far"] for t in tracked) + sum(o["cost_so_far"] for o in remote_orphans)
    return {"tracked": tracked, "orphans": {"remote": remote_orphans, "ledger": ledger_orphans},
            "totals": {"hourly_rate": round(hourly, 6), "cost_so_far": round(cost, 6)}}


def _remote_cost(r: RemoteRental, now: float) -> float:
    try:
        started = datetime.fromisoformat((r.created_at or "").replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
    return float((Decimal(str(r.hourly_cost)) * Decimal(max(0.0, now - started)) / 3600).quantize(Decimal("0.000001")))


def _render_rentals(c: Console, p: dict) -> None:
    table = Table(title="Rentals (ledger vs Basilica)")
    for col in ("rental", "name", "gpu", "state", "$/box/h", "cost so far", "note"):
        table.add_column(col, overflow="fold")
    for t in p["tracked"]:
        e = t["ledger"]
        table.add_row(e["remote_id"] or "-", e["name"], f"{e['gpu_type']} x{e['gpu_count']}", t["remote"]["status"],
                      money(e["hourly_rate"] or 0), money(e["cost_so_far"]), "tracked")
    for o in p["orphans"]["remote"]:
        table.add_row(o["rental_id"], o["name"], f"{o['gpu_type']} x{o['gpu_count']}", o["status"],
                      money(o["hourly_cost"]), money(o["cost_so_far"]), f"[red]ORPHAN: {o['reason']}[/red]")
    for e in p["orphans"]["ledger"]:
        table.add_row(e["remote_id"] or "-", e["name"], f"{e['gpu_type']} x{e['gpu_count']}", e["state"],
                      money(e["hourly_rate"] or 0), money(e["cost_so_far"]), f"[yellow]ORPHAN: {e['reason']}[/yellow]")
    c.print(table)
    c.print(f"burning {money(p['totals']['hourly_rate'])}/h; spent so far {money(p['totals']['cost_so_far'])}")
    if p["orphans"]["remote"] or p["orphans"]["ledger"]:
        c.print("orphans found: stop remote orphans with `subnet gpus stop ID`; "
                "`stop` on a ledger orphan closes its row.", style="bold")


if __name__ == "__main__":  # pragma: no cover
    gpus_app(sys.argv[1:])
