"""`subnet gpus ... --provider basilica|vast|all`: offers ranked across providers, Vast's boxes and balance.

`offers` ranks every allowed offer by expected cost per evaluation (selection.py) with the start times
learned from this validator's ledger; `--explain` adds why each offer ranks where it does, the offers
refused (and why) and the providers left out. A provider that cannot be asked (no key, quota, down)
is left out with one line on stderr; with `--provider all` the other one still answers.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import typer
from rich.console import Console
from rich.table import Table

from subnet.cli.tables import add_number, add_text, compact_table
from subnet.compute.errors import EXIT_CONFIG, EXIT_NOT_FOUND, EXIT_POLICY, EXIT_UNAVAILABLE, BasilicaError
from subnet.compute.policy import GpuPolicy, money
from subnet.compute.providers import (
    BasilicaOffers,
    Choice,
    ProviderDown,
    VastOffers,
    cheapest_across,
    load_policy,
    select_providers,
)
from subnet.compute.selection import LearnedStarts, learn_starts, samples_from_ledger

DEFAULT_BUSY_S = 300.0  # a miner's evaluation: a round's tasks against one Actor, minutes at most


def basilica_source(api_key: str | None, policy: GpuPolicy) -> BasilicaOffers:
    from subnet.compute.basilica import BasilicaGPUClient
    from subnet.compute.settings import ConfigError, load_settings

    try:
        return BasilicaOffers(BasilicaGPUClient(load_settings(api_key=api_key), policy=policy))
    except ConfigError as exc:
        raise ProviderDown("basilica", str(exc)) from None


def vast_client(vast_key: str | None) -> Any:
    from subnet.compute.vast import VastClient, resolve_vast_key

    key = resolve_vast_key(vast_key)
    if not key:
        raise ProviderDown("vast", "no Vast API key: set VAST_API_KEY (or pass --vast-key); see docs/operator.md")
    return VastClient(key)


def learned_starts(ledger_path: Path | None) -> LearnedStarts:
    """Start times from the ledger, read only: a missing state DB is no history, never created here."""
    if ledger_path is None or not ledger_path.exists():
        return learn_starts([])
    from subnet.compute.ledger import Ledger

    with Ledger(ledger_path) as ledger:
        return learn_starts(samples_from_ledger(ledger.entries()))


async def rank_offers(names: list[str], policy: GpuPolicy, learned: LearnedStarts, busy_s: float, *,
                      api_key: str | None, vast_key: str | None, warn: Callable[[str], None]) -> Choice:
    sources: list[Any] = []
    down: dict[str, str] = {}
    vast = None
    for name in names:
        try:
            if name == "basilica":
                sources.append(basilica_source(api_key, policy))
            else:
                vast = vast_client(vast_key)
                sources.append(VastOffers(vast))
        except ProviderDown as exc:
            down[name] = exc.reason
    try:
        choice = await cheapest_across(sources, policy, learned, busy_s, warn=warn) if sources else Choice()
    finally:
        if vast is not None:
            await vast.aclose()
    used = [s.name for s in sources if s.name not in choice.left_out]
    for name, reason in down.items():  # not configured: one line each, as a failed search gets
        warn(f"{name} left out of this selection: {reason}; " + (f"using {', '.join(used)}" if used else
                                                                 "no provider left"))
    choice.left_out = down | choice.left_out
    return choice


def choice_json(choice: Choice, policy: GpuPolicy, busy_s: float) -> dict:
    return {
        "cap_usd_per_hour": float(policy.max_hourly_rate),
        "busy_s": busy_s,
        "ranked": [{"provider": r.offer.provider, "offer_id": r.offer.offer_id, "gpu": r.offer.gpu_model,
                    "gpu_count": r.offer.gpu_count, "market": r.offer.market,
                    "hourly_usd": float(r.offer.hourly_usd), "start_s": r.start_s,
                    "cost_per_eval_usd": float(r.cost), "why": r.why} for r in choice.ranked],
        "refused": [{"provider": o.provider, "offer_id": o.offer_id, "gpu": o.gpu_model, "market": o.market,
                     "gpu_count": o.gpu_count, "hourly_usd": float(o.hourly_usd), "reason": why}
                    for o, why in choice.refused],
        "left_out": choice.left_out,
    }


def render_choice(c: Console, choice: Choice, policy: GpuPolicy, busy_s: float, explain: bool) -> None:
    table = compact_table(f"offers by expected $/eval (cap {money(policy.max_hourly_rate)}/h, busy {busy_s:.0f} s)")
    add_number(table, "#")
    add_text(table, "offer", wrap=True)
    add_text(table, "gpu", wrap=False, max_width=18)
    add_text(table, "mkt", wrap=False)
    for column in ("$/h", "start s", "$/eval"):
        add_number(table, column)
    for i, r in enumerate(choice.ranked, 1):
        o = r.offer
        table.add_row(str(i), f"{o.provider}:{o.offer_id}", f"{o.gpu_model} x{o.gpu_count}", "spot" if o.spot else "od",
                      money(o.hourly_usd), f"{r.start_s:.0f}", f"{r.cost:.5f}")
    c.print(table)
    if not choice.ranked:
        c.print(f"no allowed offer at or under the cap {money(policy.max_hourly_rate)}/h")
    if explain:
        for i, r in enumerate(choice.ranked, 1):
            c.print(f"{i}. {r.offer.provider}:{r.offer.offer_id}: {r.why}", highlight=False)
        for o, why in choice.refused:
            c.print(f"refused {o.provider}:{o.offer_id}: {why}", highlight=False)
    for name, why in choice.left_out.items():
        c.print(f"left out {name}: {why}", highlight=False)


# ---- Vast boxes: list, stop, balance -------------------------------------------------------------


def run_vast(vast_key: str | None, action: Callable[[VastOffers], Any]) -> Any:
    """Run one async action against a Vast client that is always closed afterwards."""

    async def go() -> Any:
        client = vast_client(vast_key)
        async with client:
            return await action(VastOffers(client))

    return asyncio.run(go())


def instances_table(instances: list[Any]) -> Table:
    table = compact_table("Vast instances")
    add_number(table, "id")
    add_text(table, "label")
    add_text(table, "status", wrap=False, max_width=12)
    add_number(table, "$/h")
    add_text(table, "address", wrap=False, max_width=22)
    for i in instances:
        table.add_row(str(i.id), i.label or "-", i.actual_status or "loading",
                      money(i.dph_total) if i.dph_total is not None else "-", i.public_url() or "-")
    return table


def instance_json(i: Any) -> dict:
    # `raw` is left out on purpose: its `extra_env` holds the Actor's token.
    return {"id": i.id, "label": i.label, "actual_status": i.actual_status, "intended_status": i.intended_status,
            "status_msg": i.status_msg, "dph_total": float(i.dph_total) if i.dph_total is not None else None,
            "is_bid": i.is_bid, "url": i.public_url()}


def balance_line(provider: str, amount: Decimal) -> str:
    return f"{provider} balance {money(amount)}"


Fail = Callable[[str, int], None]  # prints one line, exits with the code; never returns


def vast_call(vast_key: str | None, action: Callable[[VastOffers], Any], fail: Fail) -> Any:
    from subnet.compute.vast import VastNotFound

    try:
        return run_vast(vast_key, action)
    except VastNotFound as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except ProviderDown as exc:
        fail(str(exc), EXIT_CONFIG if "no Vast API key" in exc.reason else EXIT_UNAVAILABLE)


def show_vast_instances(as_json: bool, vast_key: str | None, fail: Fail) -> None:
    found = vast_call(vast_key, lambda vast: vast.mine(), fail)
    if as_json:
        typer.echo(json.dumps([instance_json(i) for i in found], indent=2))
    else:
        Console(soft_wrap=False).print(instances_table(found))


def stop_vast(instance_id: str, as_json: bool, vast_key: str | None, ledger_path: Path, fail: Fail) -> None:
    from subnet.compute.ledger import Ledger

    if not instance_id.isdigit():
        fail(f"a Vast instance id is a number, not {instance_id!r}", EXIT_CONFIG)
    vast_call(vast_key, lambda vast: vast.stop(instance_id), fail)
    if ledger_path.exists():  # the destroy was answered: proof enough to close our row, if we have one
        with Ledger(ledger_path) as book:
            entry = book.find(instance_id)
            if entry is not None and entry.live:
                book.mark_stopped(entry.name, note="destroyed by `subnet gpus stop`")
    payload = {"provider": "vast", "instance_id": int(instance_id), "status": "destroyed"}
    typer.echo(json.dumps(payload) if as_json else f"destroyed Vast instance {instance_id}")


# ---- Vast: rent one box by hand -----------------------------------------------------------------


async def find_allowed(vast: VastOffers, policy: GpuPolicy, offer_id: str) -> tuple[Any, str]:
    """(the box offer, "") when `offer_id` is among the offers the policy allows (the cap inside the
    search, as for the validator), else (None, why in one line)."""
    from subnet.compute.providers import cap_variable
    from subnet.compute.selection import refusal

    allowed = {o.offer_id: o for o in await vast.offers(policy)}
    box = allowed.get(offer_id)
    if box is not None and refusal(box, policy) is None:
        return box, ""
    # Not under the cap or not in the allowlist: the same searches without the cap say which.
    box = next((o for o in await vast.offers(policy, capped=False) if o.offer_id == offer_id), None)
    why = refusal(box, policy, cap_variable() or "SUBNET_MAX_HOURLY_RATE") if box is not None else None
    return None, why or (f"not a rentable offer of the allowlist {policy.describe_allowlist()} "
                         "(another GPU or count, unverified, or taken)")


async def rent_vast_box(vast: VastOffers, box: Any, policy: GpuPolicy, image: str, ledger_path: Path,
                        identity: str) -> dict:
    """Ledger row first (owner "cli", label `sn-<validator id>-cli-<rand>`), then the create; the row
    is failed on a refusal, kept open when the answer was lost (the label finds it). Its own Actor
    token guards the public port, as for the validator's instances."""
    import secrets

    from subnet.compute.ledger import Ledger
    from subnet.compute.vast import VastError
    from subnet.protocol.actor_auth import ACTOR_TOKEN_ENV, new_token
    from subnet.runtime.vast import PORT_MAPPING
    from subnet.runtime.vast_reclaim import KIND
    from subnet.util.text import one_line

    label, token = f"sn-{identity}-cli-{secrets.token_hex(3)}", new_token()
    bid = min(box.hourly_usd, policy.max_hourly_rate) if box.spot else None  # at or under the cap
    with Ledger(ledger_path) as book:
        book.begin(KIND, label, owner="cli", offering_id=box.offer_id, gpu_type=box.gpu_model,
                   gpu_count=box.gpu_count, is_spot=box.spot, hourly_rate=box.hourly_usd,
                   detail={"provider": "vast", "gpu_model": box.gpu_model, "bid": str(bid) if bid else None,
                           "machine_id": box.host, "image": image})
        try:
            instance_id = await vast.client.create_instance(int(box.offer_id), image=image, price=bid, label=label,
                                                            env={ACTOR_TOKEN_ENV: token, **PORT_MAPPING})
        except VastError as exc:
            if exc.ambiguous:
                book.note(label, f"create answer lost: {one_line(str(exc), 200)}")
            else:
                book.mark_failed(label, one_line(str(exc), 300))
            raise ProviderDown("vast", f"create on offer {box.offer_id}: {one_line(str(exc))}") from None
        book.mark_active(label, str(instance_id), box.hourly_usd)
    return {"provider": "vast", "instance_id": instance_id, "label": label, "offer_id": box.offer_id,
            "gpu": box.gpu_model, "hourly_usd": float(box.hourly_usd), "bid": float(bid) if bid else None,
            "image": image, "actor_token": token}


def rent_vast(offer_id: str, image: str | None, dry_run: bool, as_json: bool, vast_key: str | None,
              ledger_path: Path, identity: str, fail: Fail) -> None:
    """`subnet gpus rent --provider vast OFFER_ID --image REF`: one box, refused in one line when the
    offer is above the cap or outside the allowlist."""
    if not offer_id.isdigit():
        fail(f"a Vast offer id is a number, not {offer_id!r}", EXIT_CONFIG)
    if not image:
        fail("renting on Vast needs --image REF (the Docker image the box runs)", EXIT_CONFIG)
    policy = policy_or_fail(fail)

    async def go(vast: VastOffers) -> dict:
        box, why = await find_allowed(vast, policy, offer_id)
        if box is None:
            return {"refused": f"vast offer {offer_id} refused: {why}"}
        if dry_run:
            return {"provider": "vast", "offer_id": offer_id, "gpu": box.gpu_model,
                    "hourly_usd": float(box.hourly_usd), "image": image, "dry_run": True}
        return await rent_vast_box(vast, box, policy, image, ledger_path, identity)

    done = vast_call(vast_key, go, fail)
    if "refused" in done:
        fail(done["refused"], EXIT_POLICY)
    if as_json:
        typer.echo(json.dumps(done))
    elif dry_run:
        typer.echo(f"would rent vast offer {offer_id}: {done['gpu']} at {money(Decimal(str(done['hourly_usd'])))}/h")
    else:
        typer.echo(f"rented vast offer {offer_id} as instance {done['instance_id']} ({done['label']}): "
                   f"{done['gpu']} at {money(Decimal(str(done['hourly_usd'])))}/h; Actor token {done['actor_token']}")


def show_balances(provider: str, as_json: bool, api_key: str | None, vast_key: str | None, fail: Fail) -> None:
    from subnet.compute.basilica import BasilicaGPUClient
    from subnet.compute.settings import ConfigError, load_settings

    try:
        names = select_providers(provider)
    except ValueError as exc:
        fail(str(exc), EXIT_CONFIG)
    result: dict[str, float] = {}
    for name in names:
        if name == "vast":
            amount = vast_call(vast_key, lambda vast: vast.balance(), fail)
        else:
            try:
                amount = BasilicaGPUClient(load_settings(api_key=api_key)).balance()["balance"]
            except ConfigError as exc:
                fail(str(exc), EXIT_CONFIG)
            except BasilicaError as exc:
                fail(str(exc), exc.exit_code)
        result[name] = float(amount)
    typer.echo(json.dumps(result) if as_json else "\n".join(balance_line(n, Decimal(str(a))) for n, a in result.items()))


def policy_or_fail(fail: Fail) -> GpuPolicy:
    from subnet.compute.policy import PolicyFormatError

    try:
        return load_policy()
    except PolicyFormatError as exc:
        fail(str(exc), EXIT_CONFIG)
        raise AssertionError("unreachable") from None

