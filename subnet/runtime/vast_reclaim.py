"""Destroy what this validator left on Vast.ai, and close ledger rows only on proof.

Ours is what the ledger says we created (rows of kind "instance" owned by this validator) and what
carries our label prefix `sn-<validator id>-` in the account's listing: a crash between the create
call and its answer leaves an instance the ledger knows by label only. Another validator's instances
(another prefix, another ledger) are never touched, even on a shared account, nor a box the operator
rented by hand with `subnet gpus rent` (our prefix, a ledger row owned by "cli"). A row closes when the
destroy was answered (or 404: already gone) or when the instance is absent from the listing.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from subnet.compute.ledger import Ledger, LedgerEntry
from subnet.compute.vast import VastError, VastNotFound
from subnet.util.text import one_line

log = logging.getLogger(__name__)
KIND = "instance"


async def destroy(client: Any, ledger: Ledger, name: str, instance_id: int) -> bool:
    """Destroy one instance; True once it is proven gone (row closed), False if it may still run."""
    try:
        await client.destroy_instance(instance_id)
    except VastNotFound:
        ledger.mark_stopped(name, note="destroy: already gone (404)")
        return True
    except VastError as exc:
        ledger.note(name, f"destroy failed, kept for reclaim: {one_line(str(exc), 200)}")
        log.warning("could not destroy Vast instance %s (kept in the ledger for reclaim): %s", name,
                    one_line(str(exc), 200))
        return False
    ledger.mark_stopped(name)
    return True


def _ours(entries: Iterable[LedgerEntry], owners: set[str]) -> list[LedgerEntry]:
    return [e for e in entries if e.owner in owners]


async def reclaim(client: Any, ledger: Ledger, *, owners: set[str], prefix: str) -> list[str]:
    """Destroy every live instance of ours; returns the labels destroyed. Raises VastError when the
    account cannot be listed (nothing is concluded then)."""
    listing = await client.instances()
    by_id = {i.id: i for i in listing}
    rows = _ours(ledger.live(KIND), owners)
    targets: dict[int, str] = {}
    for inst in listing:
        if (inst.label or "").startswith(prefix) and not _rented_by_hand(ledger, inst.label, owners):
            targets[inst.id] = inst.label
    for row in rows:
        remote = _int(row.remote_id)
        if remote is not None and remote in by_id:
            label = by_id[remote].label or row.name
            if label == row.name or label.startswith(prefix):
                targets[remote] = row.name
    destroyed = []
    for instance_id, label in sorted(targets.items()):
        if ledger.get(label) is None:  # made by us, answer lost before any row: record it to close it
            ledger.begin(KIND, label, owner=sorted(owners)[0], detail={"provider": "vast", "found": "by label"})
            ledger.mark_active(label, str(instance_id))
        elif ledger.get(label).remote_id is None:
            ledger.mark_active(label, str(instance_id))
        if await destroy(client, ledger, label, instance_id):
            destroyed.append(label)
    listed_labels = {i.label for i in listing}
    for row in rows:  # live rows with nothing behind them: absent from the listing is proof
        remote = _int(row.remote_id)
        if not ledger.get(row.name).live:
            continue
        if (remote is None or remote not in by_id) and row.name not in listed_labels:
            ledger.mark_stopped(row.name, note="absent from the account's listing")
    return destroyed


def _rented_by_hand(ledger: Ledger, label: str, owners: set[str]) -> bool:
    """A box `subnet gpus rent --provider vast` rented carries our prefix too, but its row names
    another owner ("cli"): the operator stops it (`subnet gpus stop`), not the next round."""
    row = ledger.get(label)
    return row is not None and row.owner not in owners


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
