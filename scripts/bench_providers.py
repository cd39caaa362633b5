#!/usr/bin/env python3
"""Dollars per round on Basilica alone, Vast alone and both, against the ideal.

    python scripts/bench_providers.py --miners 16,64 --rounds 12 --seed 7

Rows marked with a mode (`--mode basilica`, `--mode vast`, `--mode cloud`) are what the product does
in that mode; the others show what learning start times is worth.

Pure simulation (no network, no twins started): the real selection code (`subnet.compute.selection`:
the allowlist, the cap, expected cost per evaluation with start times learned from past rounds) picks
a box for every miner of every round out of a simulated market, and each box is paid for its actual
start plus its busy time. The model, stated:

  offers    Basilica: the twin's catalogue (`twins/twin_state.py` DEFAULT_OFFERINGS), each offering
            backed by `--basilica-capacity` nodes a round. Vast: `--vast-offers` machines (one box each)
            of the allowlisted GPUs and some others, prices spread around today's Vast listings
            (V100 on demand $0.10-0.35/h, bid $0.05-0.20; A4000 $0.10-0.30; A6000 bid $0.20-0.50),
            some over the cap (the search drops those, selection would refuse them anyway).
  placement what the product does (`runtime/market.py` with `compute/placement.RoundPlan`): the round
            sees every Vast box and the cheapest allowed Basilica offering of each request (a
            deployment asks for a GPU model, count and market, not an offering: any node of that
            request serves it, the capacity of every offering alike); all are ranked once, then each
            miner takes the best choice left (a Vast box once, a Basilica request until its nodes run
            out). A start refused before anything ran (a Vast box rented by another account
            meanwhile, `--vast-gone`; Basilica out of nodes) moves the miner, in `--mode cloud`, to
            the other provider's best choice (the same provider's next when the other has none left),
            once; refused twice it is unplaced. A provider's runtime alone does not retry a refused
            start: `--mode vast` starts each miner on its best box left, `--mode basilica` every miner
            on its cheapest offering's request (when its nodes run out, the rest are infrastructure).
  starts    Basilica: the twin's production profile (`twins/basilica_profile.py`): schedule 2-20 s
            plus a pull of 30-300 s per deployment. Vast: each machine has its own start (the twin's
            per-offer `start_s`: image pull on the host's own link plus boot), drawn once per machine
            from 45-1200 s (log-uniform: most hosts pull in a minute or two, some take many), then
            ±20 % per start.
  busy      every evaluation keeps its box `--busy-s` seconds (±25 % per miner).
  learned   start times are learned from the rounds before (median of the last 20), per Vast machine
            where it was seen before, else per (provider, GPU model), else the priors of
            selection.py; round 1 runs on priors alone. "per GPU model only": the same without
            machine ids in the ledger.
  ideal     every miner on the cheapest allowed box of both markets, zero start time.
  cheapest/h both markets, the lowest hourly price first, start times ignored (what "cheapest GPU"
            meant before): shows what learning the start times is worth (same placement otherwise).

Not modelled: outbids and lost machines (a box lost mid-round is paid again), Vast's per-GB transfer
and the Basilica bill being an estimate (Basilica takes no price for deployments).
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from subnet.compute.placement import RoundPlan  # noqa: E402
from subnet.compute.policy import GpuPolicy, Offering  # noqa: E402
from subnet.compute.selection import (  # noqa: E402
    BoxOffer,
    LearnedStarts,
    StartSample,
    from_basilica,
    from_vast,
    gpu_key,
    learn_starts,
    rank,
    refusal,
)
from subnet.compute.vast import VastOffer  # noqa: E402
from subnet.twins.basilica_profile import ProductionProfile  # noqa: E402
from subnet.twins.twin_state import DEFAULT_OFFERINGS  # noqa: E402

VAST_GPUS = [  # (name, count, interruptible, price range $/h for the box)
    ("Tesla V100", 1, False, (0.10, 0.35)), ("Tesla V100", 1, True, (0.05, 0.20)),
    ("RTX A4000", 1, False, (0.10, 0.30)), ("RTX A4000", 2, False, (0.22, 0.55)),
    ("RTX A6000", 1, True, (0.20, 0.50)), ("RTX 3090", 1, False, (0.08, 0.20)),  # 3090: not allowed
]


@dataclass
class Box:
    offer: BoxOffer
    capacity: int
    start_s: float  # Vast: this machine's own start; Basilica: unused (drawn per start)


def basilica_market(capacity: int) -> list[Box]:
    boxes = []
    for row in DEFAULT_OFFERINGS:
        o = Offering(row["id"], row["gpu_type"], row["gpu_count"], row["is_spot"], Decimal(row["hourly_rate_per_gpu"]),
                     row["provider"], row["region"], row["gpu_memory_gb_per_gpu"])
        boxes.append(Box(from_basilica(o), capacity, 0.0))
    return boxes


def vast_market(n: int, rng: random.Random) -> list[Box]:
    boxes = []
    for i in range(n):
        name, count, bid, (lo, hi) = VAST_GPUS[i % len(VAST_GPUS)]
        price = Decimal(str(round(rng.uniform(lo, hi), 3)))
        offer = VastOffer(id=300_000 + i, gpu_name=name, num_gpus=count, gpu_ram_gb=16.0,
                          dph_total=price * (3 if bid else 1), min_bid=price if bid else None, interruptible=bid,
                          reliability=0.98, verified=True, raw={"machine_id": 50_000 + i})
        start = math.exp(rng.uniform(math.log(45.0), math.log(1200.0)))
        boxes.append(Box(from_vast(offer), 1, start))
    return boxes


def actual_start(box: Box, profile: ProductionProfile, rng: random.Random) -> float:
    if box.offer.provider == "basilica":
        fate = profile.draw()
        return fate.schedule_s + fate.pull_s
    return box.start_s * rng.uniform(0.8, 1.2)


def request_key(offer: BoxOffer) -> tuple[str, int, bool]:
    """What a Basilica deployment asks for: a GPU model, a count, spot or not (no offering id)."""
    return gpu_key(offer.gpu_model), offer.gpu_count, offer.spot


def round_offers(market: list[Box], policy: GpuPolicy) -> tuple[list[BoxOffer], dict[tuple, int]]:
    """What the product's preflight sees (`runtime/market.py` RoundOffers): every Vast box, and the
    cheapest allowed Basilica offering of each request, good for as many deployments as Basilica
    has nodes of that request (the capacity of every offering of the same GPU, count and market)."""
    vast = [b.offer for b in market if b.offer.provider == "vast"]
    allowed = sorted((b for b in market if b.offer.provider == "basilica" and refusal(b.offer, policy) is None),
                     key=lambda b: (b.offer.hourly_usd, b.offer.offer_id))
    nodes: dict[tuple, int] = {}
    cheapest: list[BoxOffer] = []
    for box in allowed:
        key = request_key(box.offer)
        if key not in nodes:
            cheapest.append(box.offer)
        nodes[key] = nodes.get(key, 0) + box.capacity
    return vast + cheapest, nodes


def one_round(market: list[Box], miners: int, policy: GpuPolicy, learned: LearnedStarts, busy_s: float,
              rng: random.Random, profile: ProductionProfile, by_price: bool,
              gone: float, fallback: bool) -> tuple[Decimal, list[StartSample], int]:
    """The product's placement (`runtime/market.py` over `compute/placement.RoundPlan`): rank once,
    each miner takes the best choice left; a refused start (a Vast box rented by another account,
    probability `gone`; Basilica out of nodes of that request) moves it, with `fallback`, to the other
    provider's best (else the same one's next), once.
    Returns (dollars, starts, miners unplaced)."""
    offers, nodes = round_offers(market, policy)
    if not fallback:  # BasilicaRuntime alone deploys every miner on its cheapest offering's request
        offers = [o for o in offers if o.provider == "vast"] + [o for o in offers if o.provider == "basilica"][:1]
    ranked = rank(offers, policy, learned, busy_s)
    if by_price:
        ranked.sort(key=lambda r: (r.offer.hourly_usd, r.offer.provider, r.offer.offer_id))
    plan, box_of = RoundPlan(ranked), {(b.offer.provider, b.offer.offer_id): b for b in market}
    cost, samples, unplaced = Decimal(0), [], 0
    for _ in range(miners):
        choice, tries = plan.take(), 0
        while choice is not None and tries < 2:
            tries += 1
            key = request_key(choice.offer)
            if choice.offer.provider == "basilica" and nodes[key] > 0:
                nodes[key] -= 1
                break
            if choice.offer.provider == "vast" and rng.random() >= gone:
                break
            plan.refused(choice)  # refused before anything ran: nothing paid
            again = fallback and tries == 1  # --mode cloud only: a provider's own runtime does not retry
            choice = (plan.take(not_on={choice.offer.provider}) or plan.take()) if again else None
        if choice is None:
            unplaced += 1
            continue
        plan.started(choice)
        box = box_of[(choice.offer.provider, choice.offer.offer_id)]
        start = actual_start(box, profile, rng)
        busy = busy_s * rng.uniform(0.75, 1.25)
        cost += box.offer.hourly_usd * Decimal(str(start + busy)) / 3600
        samples.append(StartSample(box.offer.provider, gpu_key(box.offer.gpu_model), start, float(len(samples)),
                                   box.offer.host))
    return cost, samples, unplaced


@dataclass
class Result:
    dollars: float  # mean per round
    per_eval: float  # mean per placed miner
    start_s: float  # mean start paid for
    placed: int  # miners with a box, per round (the fewest of any round)


def run(market: list[Box], miners: int, rounds: int, policy: GpuPolicy, busy_s: float, seed: int,
        by_price: bool = False, per_machine: bool = True, gone: float = 0.0) -> Result:
    fallback = len({b.offer.provider for b in market}) > 1  # the cloud runtime; one provider's runtime alone does not
    rng, profile = random.Random(seed), ProductionProfile(seed=seed)
    history: list[StartSample] = []
    costs, starts, placed = [], [], miners
    for r in range(rounds):
        learned = learn_starts(history)
        cost, samples, missing = one_round(market, miners, policy, learned, busy_s, rng, profile, by_price, gone,
                                           fallback)
        for s in samples:  # newer rounds are newer samples
            history.append(StartSample(s.provider, s.gpu_model, s.seconds, r * 10_000 + s.at,
                                       s.host if per_machine else None))
        costs.append(float(cost))
        starts += [s.seconds for s in samples]
        placed = min(placed, miners - missing)
    dollars = statistics.mean(costs)
    return Result(dollars, dollars / placed if placed else float("nan"), statistics.mean(starts or [0.0]), placed)


def ideal(market: list[Box], miners: int, policy: GpuPolicy, busy_s: float) -> float:
    allowed = [b.offer.hourly_usd for b in market if refusal(b.offer, policy) is None]
    return float(min(allowed) * Decimal(str(busy_s)) * miners / 3600) if allowed else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--miners", default="16,64")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--busy-s", type=float, default=300.0)
    ap.add_argument("--vast-offers", type=int, default=60)
    ap.add_argument("--basilica-capacity", type=int, default=8, help="nodes per Basilica offering per round")
    ap.add_argument("--vast-gone", type=float, default=0.1,
                    help="chance a Vast box is rented by another account between the search and the create")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    policy = GpuPolicy.default()
    basilica = basilica_market(args.basilica_capacity)
    vast = vast_market(args.vast_offers, random.Random(args.seed))
    print(f"policy: {policy.describe_allowlist()}, cap ${policy.max_hourly_rate}/h; busy {args.busy_s:.0f} s/eval; "
          f"{args.rounds} rounds, mean $/round; Vast box gone at create {args.vast_gone:.0%}")
    print(f"{'miners':>6}  {'market':<30}{'placed':>7}{'$/round':>9}{'$/eval':>9}{'start s':>8}{'x ideal':>8}")
    for miners in (int(m) for m in args.miners.split(",")):
        best = ideal(basilica + vast, miners, policy, args.busy_s)
        for label, market, by_price, per_machine in ROWS:
            market = {"basilica": basilica, "vast": vast, "both": basilica + vast}[market]
            r = run(market, miners, args.rounds, policy, args.busy_s, args.seed, by_price, per_machine, args.vast_gone)
            ratio = r.per_eval / (best / miners)  # per miner evaluated: an unplaced miner is no saving
            print(f"{miners:>6}  {label:<30}{r.placed:>7}{r.dollars:>9.4f}{r.per_eval:>9.5f}{r.start_s:>8.0f}"
                  f"{ratio:>8.2f}")
        print(f"{miners:>6}  {'ideal (cheapest, 0 s)':<30}{miners:>7}{best:>9.4f}{best / miners:>9.5f}{0:>8}"
              f"{1.0:>8.2f}")


# (label, market, ranked by price per hour, start times learned per machine). The first three are
# what the product runs (`--mode basilica`, `--mode vast`, `--mode cloud`); the last two are what
# it would cost without what selection learns.
ROWS = [("basilica (--mode basilica)", "basilica", False, True),
        ("vast (--mode vast)", "vast", False, True),
        ("both (--mode cloud)", "both", False, True),
        ("both, per GPU model only", "both", False, False),
        ("both, cheapest per hour", "both", True, False)]

if __name__ == "__main__":
    main()
