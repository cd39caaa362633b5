"""The twin's offer book and how a search filters it (pure: no I/O).

A search body is vast-python's (vastai 1.9.1 `vastai/api/offers.py` `search_offers`): filters
`{field: {op: value}}`, `order` `[[field, "asc"|"desc"]]`, `type` "on-demand" | "bid", `limit`,
`allocated_storage`. The operators are the query language's (`vastai/data/query.py` `OP_TO_STR`:
eq neq gt gte lt lte in notin). Values compare in wire units: `gpu_ram` in MB (`vastai/api/query.py`
`offers_mult`), prices in $/h. The server (`vast/web/apiquery.py`, named in `vastai/data/query.py`)
is not public: a row that lacks a filtered field fails that filter here (the conservative reading),
and unknown keys like `allocated_storage`/`disable_bundling` are not filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NOT_FILTERS = {"order", "type", "limit", "allocated_storage", "disable_bundling"}
DEFAULT_ORDER = [["score", "desc"]]  # `search_offers`: the order when none is given


@dataclass
class TwinOffer:
    """One rentable box. `row` is what the search answers (vastai/data/offer.py field names);
    `start_s` is twin-only: production seconds from create to the Actor starting (pull + boot)."""

    row: dict
    start_s: float = 60.0

    @property
    def id(self) -> int:
        return int(self.row["id"])


def vast_offer(offer_id: int, gpu_name: str, dph_total: str | float, *, min_bid: str | float | None = None,
               num_gpus: int = 1, gpu_ram_gb: float = 24, reliability: float = 0.99, verified: bool = True,
               cuda_max_good: float = 12.4, start_s: float = 60.0, **extra: Any) -> TwinOffer:
    """An offer as Vast lists it. `min_bid` None: the host takes no bids (on demand only)."""
    row = {"id": offer_id, "ask_contract_id": offer_id, "machine_id": 10_000 + offer_id, "gpu_name": gpu_name,
           "num_gpus": num_gpus, "gpu_ram": int(gpu_ram_gb * 1000), "dph_total": float(dph_total),
           "min_bid": float(min_bid) if min_bid is not None else None, "reliability": reliability,
           "verified": verified, "verification": "verified" if verified else "unverified",
           "cuda_max_good": cuda_max_good, "rentable": True, "rented": False, "external": False,
           "direct_port_count": 20, "public_ipaddr": "127.0.0.1", "score": round(100 / float(dph_total), 3),
           "is_bid": False} | extra
    return TwinOffer(row, start_s)


def _passes(value: Any, op: str, want: Any) -> bool:
    if op == "eq":
        return value == want
    if op == "neq":
        return value != want
    if op in ("in", "notin"):
        inside = value in (want if isinstance(want, list) else [want])
        return inside if op == "in" else not inside
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return False  # an ordered comparison needs a number on both sides
    try:
        return {"gt": value > want, "gte": value >= want, "lt": value < want, "lte": value <= want}[op]
    except (KeyError, TypeError):
        raise ValueError(f"unknown operator {op!r}") from None


def matches(row: dict, filters: dict) -> bool:
    for name, ops in filters.items():
        if name in NOT_FILTERS:
            continue
        if not isinstance(ops, dict):
            raise ValueError(f"filter {name!r} is not an {{op: value}} object")
        if name not in row:
            return False
        if not all(_passes(row[name], op, want) for op, want in ops.items()):
            return False
    return True


def search(book: list[TwinOffer], body: dict) -> list[dict]:
    """The offers a `POST /bundles/` body selects, ordered and limited. A bid search lists only the
    hosts that take bids (those with a `min_bid`), with `is_bid` true on the row."""
    kind = body.get("type", "on-demand")
    if kind not in ("on-demand", "bid", "reserved"):
        raise ValueError(f"unknown offer type {kind!r}")
    rows = []
    for offer in book:
        row = dict(offer.row)
        if kind == "bid":
            if row.get("min_bid") is None:
                continue
            row["is_bid"] = True
        if matches(row, body):
            rows.append(row)
    for field, direction in reversed(body.get("order") or DEFAULT_ORDER):
        rows.sort(key=lambda r: (r.get(field) is None, r.get(field) or 0), reverse=direction == "desc")
    limit = body.get("limit")
    return rows[: int(limit)] if limit else rows
