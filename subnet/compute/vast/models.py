"""The offer query (what we send) and offers/instances (what Vast answers), pure data.

Wire shapes, all from vast-python (vastai 1.9.1):
- `vastai/api/offers.py` `search_offers`: the body of `POST /bundles/` is the filter dict
  `{field: {op: value}}` plus the defaults `verified eq true, external eq false, rentable eq true,
  rented eq false`, `order` (`[[field, "asc"|"desc"]]`), `type` ("on-demand" | "bid" — the CLI's
  "interruptible" is sent as "bid"), `limit`, `allocated_storage` (GiB: the disk priced into
  `dph_total`); the answer is `{"offers": [...]}`.
- `vastai/api/query.py` `offers_mult`: `gpu_ram` is multiplied by 1000 on the wire (GB → MB; the
  offer's `gpu_ram` is MB, `vastai/data/offer.py`); string values use spaces ("RTX 4090").
- `vastai/data/offer.py`: offer fields (`dph_total`, `min_bid`, `reliability`, `verification`,
  `cuda_max_good`, `public_ipaddr`, `is_bid`, `direct_port_count`).
- `vastai/data/instance.py` + `vastai/api/instances.py`: instance rows (`actual_status`, `cur_state`,
  `intended_status`, `status_msg`, `dph_total`, `label`, `public_ipaddr`, `ports`, `extra_env` as
  [[key, value], ...]); `ports` is Docker's map, `{"8000/tcp": [{"HostIp", "HostPort"}]}`
  (`vastai/sdk.py` reads `ports["22/tcp"][0]["HostPort"]`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

DEFAULT_FILTERS = {"verified": {"eq": True}, "external": {"eq": False},
                   "rentable": {"eq": True}, "rented": {"eq": False}}
GPU_RAM_WIRE_FACTOR = 1000  # `vastai/api/query.py` offers_mult["gpu_ram"]


def money(value: Any) -> Decimal | None:
    """A price from JSON as an exact Decimal (via str, so 0.1 stays 0.1); None when absent/garbled."""
    if value is None or isinstance(value, bool):
        return None
    try:
        price = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return price if price.is_finite() else None


@dataclass(frozen=True)
class OfferQuery:
    """What to search for. `max_dph` is the cap in $/h for the whole box: on demand it bounds
    `dph_total`, for interruptible boxes it bounds `min_bid` (we then bid at or under it)."""

    gpu_names: tuple[str, ...] | list[str] = ()
    num_gpus: int = 1
    min_gpu_ram_gb: float | None = None
    max_dph: Decimal | None = None
    interruptible: bool = False
    min_reliability: float | None = 0.95
    verified: bool = True
    limit: int = 64
    disk_gb: float = 16.0  # priced into dph_total (`allocated_storage`)
    min_cuda: float | None = None
    direct_ports: bool = True  # we need port 8000 reachable: `direct_port_count >= 1`

    @property
    def price_field(self) -> str:
        return "min_bid" if self.interruptible else "dph_total"

    def to_wire(self) -> dict[str, Any]:
        """The JSON body of `POST /bundles/`, the cap inside it (Vast filters server-side)."""
        q: dict[str, Any] = dict(DEFAULT_FILTERS)
        if not self.verified:
            del q["verified"]
        names = list(self.gpu_names)
        if len(names) == 1:
            q["gpu_name"] = {"eq": names[0]}
        elif names:
            q["gpu_name"] = {"in": names}
        q["num_gpus"] = {"eq": int(self.num_gpus)}
        if self.min_gpu_ram_gb is not None:
            q["gpu_ram"] = {"gte": float(self.min_gpu_ram_gb) * GPU_RAM_WIRE_FACTOR}
        if self.min_reliability is not None:
            q["reliability"] = {"gte": float(self.min_reliability)}
        if self.min_cuda is not None:
            q["cuda_max_good"] = {"gte": float(self.min_cuda)}
        if self.direct_ports:
            q["direct_port_count"] = {"gte": 1}
        if self.max_dph is not None:
            q[self.price_field] = {"lte": float(self.max_dph)}
        q["order"] = [[self.price_field, "asc"]]  # cheapest first
        q["type"] = "bid" if self.interruptible else "on-demand"
        q["limit"] = int(self.limit)
        q["allocated_storage"] = float(self.disk_gb)
        return q

    def within_cap(self, offer: "VastOffer") -> bool:
        """The client-side re-check of the cap (never trust the filter alone)."""
        if self.max_dph is None:
            return True
        price = offer.min_bid if self.interruptible else offer.dph_total
        return price is not None and price <= self.max_dph


@dataclass(frozen=True)
class VastOffer:
    id: int
    gpu_name: str
    num_gpus: int
    gpu_ram_gb: float
    dph_total: Decimal  # the box's $/h on demand, storage included
    min_bid: Decimal | None
    interruptible: bool  # found by a bid search: rented with a bid price
    reliability: float
    verified: bool
    cuda_max_good: float | None = None
    public_ipaddr: str | None = None
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def hourly_usd(self) -> Decimal:
        """What renting it costs per hour at the least: the min bid for a bid, dph_total on demand."""
        return self.min_bid if self.interruptible and self.min_bid is not None else self.dph_total

    @classmethod
    def from_wire(cls, row: dict, interruptible: bool) -> "VastOffer | None":
        """None for a row without an id or a price (skipped: a garbled row never gets rented)."""
        price = money(row.get("dph_total"))
        if not isinstance(row.get("id"), int) or price is None:
            return None
        verified = row.get("verified")
        if not isinstance(verified, bool):  # data/offer.py carries `verification`: "verified" | ...
            verified = row.get("verification") == "verified"
        cuda = row.get("cuda_max_good")
        return cls(id=row["id"], gpu_name=str(row.get("gpu_name") or ""), num_gpus=int(row.get("num_gpus") or 0),
                   gpu_ram_gb=float(row.get("gpu_ram") or 0) / GPU_RAM_WIRE_FACTOR, dph_total=price,
                   min_bid=money(row.get("min_bid")), interruptible=interruptible,
                   reliability=float(row.get("reliability") or row.get("reliability2") or 0.0), verified=verified,
                   cuda_max_good=float(cuda) if isinstance(cuda, (int, float)) else None,
                   public_ipaddr=row.get("public_ipaddr"), raw=row)


@dataclass(frozen=True)
class VastInstance:
    id: int
    label: str | None
    actual_status: str | None  # None/"loading" while it starts, "running", "exited", ...
    cur_state: str | None
    intended_status: str | None
    status_msg: str | None
    dph_total: Decimal | None
    public_ipaddr: str | None
    ports: dict[str, list[dict]]
    is_bid: bool | None
    raw: dict = field(default_factory=dict, repr=False, compare=False)  # extra_env holds the Actor token

    def public_port(self, port: int = 8000, proto: str = "tcp") -> int | None:
        """The public port Vast mapped the container's `port` to, once it is known."""
        for mapping in self.ports.get(f"{port}/{proto}") or []:
            try:
                return int(mapping.get("HostPort"))
            except (TypeError, ValueError, AttributeError):
                continue
        return None

    def public_url(self, port: int = 8000) -> str | None:
        host, mapped = (self.public_ipaddr or "").strip(), self.public_port(port)
        return f"http://{host}:{mapped}" if host and mapped else None

    @classmethod
    def from_wire(cls, row: dict) -> "VastInstance":
        ports = row.get("ports") if isinstance(row.get("ports"), dict) else {}
        is_bid = row.get("is_bid")
        return cls(id=int(row["id"]), label=row.get("label"), actual_status=row.get("actual_status"),
                   cur_state=row.get("cur_state"), intended_status=row.get("intended_status"),
                   status_msg=row.get("status_msg"), dph_total=money(row.get("dph_total")),
                   public_ipaddr=(row.get("public_ipaddr") or "").strip() or None, ports=ports,
                   is_bid=is_bid if isinstance(is_bid, bool) else None, raw=row)
