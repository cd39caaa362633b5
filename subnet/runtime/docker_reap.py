"""Housekeeping for the Docker runtime: find and remove Actor containers and networks by label.

Every object the runtime creates carries `subnet.role=miner-actor`, `subnet.owner` (this
validator's identity) and `subnet.run`. Only objects with this validator's identity are ever looked
at, so other validators (and tests) on the same daemon are never touched; a run counts as dead by
its liveness lease (`subnet.state.lease`), never by host name or PID.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from subnet.runtime.docker_net import remove_network
from subnet.state.lease import drop_stale_leases, read_lease
from subnet.util.text import one_line

log = logging.getLogger(__name__)

ROLE_LABEL = "subnet.role"
ROLE = "miner-actor"
OWNER_LABEL = "subnet.owner"


@dataclass(frozen=True)
class Reaped:
    containers: int
    networks: int


def reap_dead_runs(client: Any, home: Path, identity: str, run_id: str) -> Reaped:
    """Remove `identity`'s containers and networks whose run (other than `run_id`) is dead.

    A foreign run whose lease still looks fresh (this process restarted seconds after a SIGKILL)
    is watched until it either beats again (alive: kept) or goes stale (reaped now), so a restart
    reclaims its predecessor's leftovers in its first round. Blocking.
    """
    mine = {"label": [f"{ROLE_LABEL}={ROLE}", f"{OWNER_LABEL}={identity}"]}
    containers = client.containers.list(all=True, filters=mine, ignore_removed=True)
    networks = client.networks.list(filters=mine)
    runs = {labels_of(o).get("subnet.run", "") for o in (*containers, *networks)} - {run_id}
    dead = {run for run in runs if not run_is_alive(home, run)}
    reaped = Reaped(
        sum(_removed(lambda c=c: c.remove(force=True)) for c in containers if labels_of(c).get("subnet.run") in dead),
        sum(_removed(lambda n=n: remove_network(n)) for n in networks if labels_of(n).get("subnet.run") in dead),
    )
    drop_stale_leases(home, keep={run_id})
    if reaped.containers or reaped.networks:
        log.info("reaped %d Actor container(s) and %d network(s) left by dead run(s) %s of validator %s",
                 reaped.containers, reaped.networks, ", ".join(sorted(dead)), identity)
    return reaped


def run_is_alive(home: Path, run: str) -> bool:
    """A fresh lease must beat again before its staleness bound to count as alive."""
    first = read_lease(home, run)
    if first is None or first.stale():
        return False
    while True:
        time.sleep(min(0.5, max(0.05, first.stale_after_s / 10)))
        now = read_lease(home, run)
        if now is None or now.stale():
            return False
        if now.beat_at > first.beat_at:
            return True


def remove_run(client: Any, identity: str, run_id: str) -> int:
    """Remove every container and network of one run now; returns how many objects went."""
    ours = {"label": [f"{ROLE_LABEL}={ROLE}", f"{OWNER_LABEL}={identity}", f"subnet.run={run_id}"]}
    containers = client.containers.list(all=True, filters=ours, ignore_removed=True)
    removed = sum(_removed(lambda c=c: c.remove(force=True)) for c in containers)
    return removed + sum(_removed(lambda n=n: remove_network(n)) for n in client.networks.list(filters=ours))


def remove_slot(client: Any, slot: str) -> None:
    """Remove one Actor's container(s) and network(s); a failure is logged (the next reap retries)."""
    selector = {"label": [f"{ROLE_LABEL}={ROLE}", f"subnet.slot={slot}"]}
    try:
        for container in client.containers.list(all=True, filters=selector, ignore_removed=True):
            container.remove(force=True)
        for network in client.networks.list(filters=selector):
            remove_network(network)
    except Exception as exc:  # noqa: BLE001 - never mask the round's own outcome
        log.error("could not remove Actor slot %s (reap_stale will): %s", slot, one_line(exc))


def labels_of(obj: Any) -> Mapping[str, str]:
    return getattr(obj, "labels", None) or obj.attrs.get("Labels") or {}


def _removed(remove: Callable[[], Any]) -> int:
    try:
        remove()
        return 1
    except Exception as exc:  # noqa: BLE001 - already gone, or the daemon failed: the next round retries
        log.warning("could not remove a stale Actor object: %s", one_line(exc))
        return 0
