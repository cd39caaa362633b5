#!/usr/bin/env python3
"""Dollars per round on Basilica alone, Vast alone and both, against the ideal.

    python scripts/bench_providers.py --miners 16,64 --rounds 12 --seed 7

Pure simulation (no network, no twins started): the real selection code (`subnet.compute.selection`:
the allowlist, the cap, expected cost per evaluation with start times learned from past rounds) picks
a box for every miner of every round out of a simulated market, and each box is paid for its actual
start plus its busy time. The model, stated:

  offers    Basilica: the twin's catalogue (`twins/twin_state.py` DEFAULT_OFFERINGS), each offering
            good for `--basilica-capacity` boxes a round. Vast: `--vast-offers` machines (one box each)
            of the allowlisted GPUs and some others, prices spread around today's Vast listings
            (V100 on demand $0.10-0.35/h, bid $0.05-0.20; A4000 $0.10-0.30; A6000 bid $0.20-0.50),
            some over the cap (the search drops those, selection would refuse them anyway).
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
            meant before): shows what learning the start times is worth.

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


def one_round(market: list[Box], miners: int, policy: GpuPolicy, learned: LearnedStarts, busy_s: float,
              rng: random.Random, profile: ProductionProfile, by_price: bool) -> tuple[Decimal, list[StartSample], int]:
    """One box per miner, best first, each box used up to its capacity: (dollars, starts, miners unplaced)."""
    left = {id(b): b.capacity for b in market}
    by_offer = {id(b.offer): b for b in market}
    cost, samples, unplaced = Decimal(0), [], 0
    for _ in range(miners):
        free = [b.offer for b in market if left[id(b)] > 0]
        ranked = rank(free, policy, learned, busy_s)
        if by_price:
            ranked.sort(key=lambda r: (r.offer.hourly_usd, r.offer.provider, r.offer.offer_id))
        if not ranked:
            unplaced += 1
            continue
        box = by_offer[id(ranked[0].offer)]
        left[id(box)] -= 1
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
        by_price: bool = False, per_machine: bool = True) -> Result:
    rng, profile = random.Random(seed), ProductionProfile(seed=seed)
    history: list[StartSample] = []
    costs, starts, placed = [], [], miners
    for r in range(rounds):
        learned = learn_starts(history)
        cost, samples, missing = one_round(market, miners, policy, learned, busy_s, rng, profile, by_price)
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
    ap.add_argument("--basilica-capacity", type=int, default=8, help="boxes per Basilica offering per round")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    policy = GpuPolicy.default()
    basilica = basilica_market(args.basilica_capacity)
    vast = vast_market(args.vast_offers, random.Random(args.seed))
    print(f"policy: {policy.describe_allowlist()}, cap ${policy.max_hourly_rate}/h; busy {args.busy_s:.0f} s/eval; "
          f"{args.rounds} rounds, mean $/round")
    print(f"{'miners':>6}  {'market':<24}{'placed':>7}{'$/round':>9}{'$/eval':>9}{'start s':>8}{'x ideal':>8}")
    for miners in (int(m) for m in args.miners.split(",")):
        best = ideal(basilica + vast, miners, policy, args.busy_s)
        rows = [("basilica alone", basilica, False, True), ("vast alone", vast, False, True),
                ("both (learned starts)", basilica + vast, False, True),
                ("both, per GPU model only", basilica + vast, False, False),
                ("both, cheapest per hour", basilica + vast, True, False)]
        for label, market, by_price, per_machine in rows:
            r = run(market, miners, args.rounds, policy, args.busy_s, args.seed, by_price, per_machine)
            ratio = r.per_eval / (best / miners)  # per miner evaluated: an unplaced miner is no saving
            print(f"{miners:>6}  {label:<24}{r.placed:>7}{r.dollars:>9.4f}{r.per_eval:>9.5f}{r.start_s:>8.0f}"
                  f"{ratio:>8.2f}")
        print(f"{miners:>6}  {'ideal (cheapest, 0 s)':<24}{miners:>7}{best:>9.4f}{best / miners:>9.5f}{0:>8}"
              f"{1.0:>8.2f}")


if __name__ == "__main__":
    main()
