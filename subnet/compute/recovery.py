"""What to do with a deployment row whose create answer never came (no UUID). Pure.

Such a row is a create that may or may not have happened: its answer was lost (timeout, 5xx), or
the process died between sending it and writing the answer down. Two server generations answer
differently, and the decision must be safe on both:

- Today's server (basilica-sdk 0.36.8) lists each deployment's `friendlyName`: a create we sent is
  found by the name we chose, or — once a listing had time to catch up — proven absent.
- The last public server (bigailabs/cathedral cb85814f) never returns `friendlyName`
  (`crates/basilica-api/src/api/routes/deployments/types.rs` 160-232; the SDK then reads ""), so
  "not listed by name" proves nothing there. But its create is idempotent per (user, name):
  `handlers.rs` 466-469 maps the name to a UUID kept in `deployment_instance_mappings`; a live
  deployment of that name is answered as it is (200, 520-630), a deleted one is reactivated under
  the same UUID (684-790), and only an unknown name makes a new one (201, 790-890). Re-sending the
  create is how that server says which UUID our name has.

So: found by name → adopt it. A listing that names deployments → wait out the listing's lag, then
the name's absence is proof. A listing that names none → if it shows no deployment the ledger does
not already know, ours does not exist (after the same lag); if it does, re-send the create with the
same name and take the UUID the answer carries — the one we lost (idempotent server) or, if the
first never arrived, a new one, which is then ours and handled like any other. Never a second
create on a server that lists names (it may not be idempotent), never a row closed for a name
missing from a listing that carries no names, and nobody else's deployment is ever touched: only
a UUID the server handed back for our own name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Iterable, Protocol

LIST_GRACE_S = 120.0  # how long a created deployment may take to show in listings
_GOING = ("terminating", "deleting", "deleted")


class Listed(Protocol):
    id: str
    friendly_name: str
    state: str


class Step(str, Enum):
    ADOPT = "adopt"  # listed under our name: take its UUID
    WAIT = "wait"  # not decidable yet: keep the row open
    CLOSE = "close"  # proven never created (or gone): close the row
    REPOST = "repost"  # names are not listed: re-send the create to learn the UUID of our name


@dataclass(frozen=True)
class Decision:
    step: Step
    why: str
    remote_id: str | None = None


def names_listed(listing: Iterable[Listed]) -> bool | None:
    """True when the listing names deployments, False when it lists some and names none (the
    public server), None when it is empty (nothing to tell by)."""
    entries = list(listing)
    if not entries:
        return None
    return any(d.friendly_name for d in entries)


def settle_unanswered(name: str, listing: list[Listed], known_ids: set[str], age_s: float,
                      grace_s: float = LIST_GRACE_S) -> Decision:
    """The next step for the row `name` whose create answer never came. `known_ids`: every UUID
    any ledger row holds (those deployments are accounted for and cannot be this one)."""
    found = next((d for d in listing if d.friendly_name == name), None)
    if found is not None:
        return Decision(Step.ADOPT, "listed under its friendly name", found.id)
    if names_listed(listing):
        if age_s < grace_s:
            return Decision(Step.WAIT, f"not listed by name yet (listings may lag a create {grace_s:g}s)")
        return Decision(Step.CLOSE, "gone: not in the deployment listing by its name")
    strangers = [d for d in listing if d.id not in known_ids and d.state.lower() not in _GOING]
    if strangers:
        return Decision(Step.REPOST, f"the listing names no deployment and shows {len(strangers)} the ledger does "
                                     "not know: re-sending the create to learn which UUID this name has")
    if age_s < grace_s:
        return Decision(Step.WAIT, f"not listed yet (listings may lag a create {grace_s:g}s)")
    return Decision(Step.CLOSE, "gone: the listing shows no deployment the ledger does not know")


def close_after_404(remote_id: str, name: str, listing: Iterable[Listed]) -> bool:
    """A DELETE by UUID answered 404: the row may close only if the listing no longer shows that
    UUID (UUIDs are listed by both server generations) nor, where names are listed, its name."""
    return not any(d.id == remote_id or (name and d.friendly_name == name) for d in listing)
