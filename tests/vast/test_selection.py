"""Cross-provider selection: the cap holds, the cheapest per evaluation wins, starts are learned."""

from __future__ import annotations

import itertools
from decimal import Decimal
from types import SimpleNamespace

import pytest

from subnet.compute import ledger as ledger_module
from subnet.compute.ledger import Ledger, LedgerEntry
from subnet.compute.policy import GpuPolicy, Offering, parse_allowlist
from subnet.compute.selection import (
    PRIOR_START_S,
    BoxOffer,
    LearnedStarts,
    StartSample,
    choose,
    expected_cost_per_eval,
    from_basilica,
    from_vast,
    gpu_key,
    learn_starts,
    rank,
    refused,
    samples_from_ledger,
)

POLICY = GpuPolicy(parse_allowlist("V100:spot:1,V100:ondemand:1,RTX-A4000:ondemand:1,RTX-A4000:spot:1"),
                   Decimal("0.44"))
NO_HISTORY = LearnedStarts()


def box(provider: str, offer_id: str, hourly: str, *, gpu: str = "RTX A4000", spot: bool = False,
        count: int = 1) -> BoxOffer:
    return BoxOffer(provider, offer_id, gpu, count, 16.0, Decimal(hourly), spot)


def vast_offer(id: int, gpu: str, dph: str, *, min_bid: str | None = None, interruptible: bool = False):
    # The fields of the contract's VastOffer (subnet.compute.vast); attribute access only.
    return SimpleNamespace(id=id, gpu_name=gpu, num_gpus=1, gpu_ram_gb=16.0, dph_total=Decimal(dph),
                           min_bid=None if min_bid is None else Decimal(min_bid), interruptible=interruptible,
                           reliability=0.99, verified=True, cuda_max_good=12.2, public_ipaddr=None)


# ---- the cap ------------------------------------------------------------------------------------


def test_an_offer_above_the_cap_is_never_chosen_on_demand_or_bid():
    on_demand_over = from_vast(vast_offer(1, "RTX A4000", "0.45"))
    bid_over = from_vast(vast_offer(2, "RTX A4000", "0.05", min_bid="0.4401", interruptible=True))
    at_cap = from_vast(vast_offer(3, "RTX A4000", "0.44"))
    # A learned start that makes the over-cap boxes far cheaper per evaluation must not matter.
    learned = LearnedStarts({("vast", "rtxa4000"): (1.0, 5)})
    ranked = rank([on_demand_over, bid_over, at_cap], POLICY, learned, busy_s=60)
    assert [r.offer.offer_id for r in ranked] == ["3"]
    reasons = dict((o.offer_id, why) for o, why in refused([on_demand_over, bid_over, at_cap], POLICY))
    assert reasons == {"1": "box price $0.45/h exceeds SUBNET_MAX_HOURLY_RATE $0.44/h",
                       "2": "bid $0.4401/h exceeds SUBNET_MAX_HOURLY_RATE $0.44/h"}
    # Only over-cap offers: nothing is chosen, rather than the least-over one.
    assert choose([on_demand_over, bid_over], POLICY, learned, 60) is None


def test_the_bid_is_the_price_of_an_interruptible_box_and_its_on_demand_price_of_the_other():
    bid = from_vast(vast_offer(7, "Tesla V100", "0.90", min_bid="0.12", interruptible=True))
    demand = from_vast(vast_offer(8, "Tesla V100", "0.30"))
    assert (bid.hourly_usd, bid.spot, demand.hourly_usd, demand.spot) == (Decimal("0.12"), True, Decimal("0.30"), False)
    # Unpriceable bid: cannot be proven under the cap, so it is no offer at all.
    assert from_vast(vast_offer(9, "Tesla V100", "0.30", interruptible=True)) is None


def test_the_allowlist_matches_either_providers_spelling_and_refuses_the_rest():
    offers = [box("vast", "a", "0.20", gpu="RTX A4000"), box("basilica", "b", "0.20", gpu="RTX-A4000"),
              box("vast", "c", "0.20", gpu="Tesla V100", spot=True), box("vast", "d", "0.10", gpu="RTX 3090"),
              box("vast", "e", "0.20", gpu="RTX A4000", count=2)]
    assert sorted(r.offer.offer_id for r in rank(offers, POLICY, NO_HISTORY, 60)) == ["a", "b", "c"]
    assert gpu_key("TESLA V100") == gpu_key("Tesla V100") == "v100"
    why = dict((o.offer_id, w) for o, w in refused(offers, POLICY))
    assert why["d"].startswith("RTX 3090 ondemand x1 is not allowed")
    assert why["e"].startswith("RTX A4000 ondemand x2 is not allowed")


# ---- cost per evaluation ------------------------------------------------------------------------


def test_cost_per_evaluation_is_hourly_times_start_plus_busy():
    offer = box("vast", "x", "0.36")
    assert expected_cost_per_eval(offer, 100, 260) == Decimal("0.036")


def test_a_cheaper_per_hour_box_with_slow_starts_loses_to_a_dearer_fast_one():
    cheap_slow = box("vast", "cheap", "0.20")
    dear_fast = box("basilica", "fast", "0.30", gpu="RTX-A4000")
    learned = LearnedStarts({("vast", "rtxa4000"): (900.0, 9), ("basilica", "rtxa4000"): (60.0, 9)})
    best = choose([cheap_slow, dear_fast], POLICY, learned, busy_s=120)
    # 0.20 × 1020 s = $0.0567 vs 0.30 × 180 s = $0.015
    assert best.offer.offer_id == "fast"
    assert best.cost == Decimal("0.015")
    ranked = rank([cheap_slow, dear_fast], POLICY, learned, busy_s=120)
    assert ranked[1].offer.offer_id == "cheap" and ranked[1].start_s == 900.0
    assert "median of 9 starts" in ranked[1].why and "$0.05667/eval" in ranked[1].why
    # With the same start times, the cheaper hour wins again.
    even = LearnedStarts({("vast", "rtxa4000"): (60.0, 3), ("basilica", "rtxa4000"): (60.0, 3)})
    assert choose([cheap_slow, dear_fast], POLICY, even, 120).offer.offer_id == "cheap"


def test_ties_are_broken_the_same_way_whatever_the_input_order():
    offers = [box("vast", "2", "0.20"), box("vast", "1", "0.20"), box("basilica", "9", "0.20", gpu="RTX-A4000"),
              box("vast", "cheap", "0.10")]
    learned = LearnedStarts({("vast", "rtxa4000"): (60.0, 1), ("basilica", "rtxa4000"): (60.0, 1)})
    orders = {tuple(r.offer.label() for r in rank(list(p), POLICY, learned, 60))
              for p in itertools.permutations(offers)}
    assert len(orders) == 1
    # Equal cost, start and price: provider, then offer id.
    assert [r.offer.offer_id for r in rank(offers, POLICY, learned, 60)] == ["cheap", "9", "1", "2"]


def test_empty_inputs():
    assert rank([], POLICY, NO_HISTORY, 60) == []
    assert choose([], POLICY, NO_HISTORY, 60) is None
    assert learn_starts([]).estimate("vast", "RTX A4000").seconds == PRIOR_START_S["vast"]
    assert samples_from_ledger([]) == []
    assert refused([], POLICY) == []


# ---- learning from the ledger -------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    now = {"t": 1_000_000.0}
    monkeypatch.setattr(ledger_module.time, "time", lambda: now["t"])
    return now


def test_start_times_are_learned_per_provider_and_gpu_from_ledger_rows(tmp_path, clock):
    with Ledger(tmp_path / "state.sqlite") as ledger:
        for i, seconds in enumerate([100, 300, 200, 5000]):  # the oldest (100 s) falls out of the last 3
            name = f"v-{i}"
            ledger.begin("rental", name, gpu_type="TESLA V100", detail={"provider": "vast"})
            clock["t"] += seconds
            ledger.mark_active(name, f"r{i}")
            clock["t"] += 10
        ledger.begin("rental", "b-0", gpu_type="RTX-A4000")
        clock["t"] += 42
        ledger.mark_active("b-0", "rb")
        ledger.begin("rental", "b-never", gpu_type="RTX-A4000")  # never started: proves nothing
        ledger.mark_failed("b-never", "no capacity")
        ledger.begin("deployment", "b-multi", gpu_type="A4000,V100")  # which model it got is unknown
        clock["t"] += 7
        ledger.mark_active("b-multi", "rm")
        rows = ledger.entries()
    samples = samples_from_ledger(rows)
    assert sorted((s.provider, s.gpu_model, s.seconds) for s in samples) == [
        ("basilica", "rtxa4000", 42.0), ("vast", "v100", 100.0), ("vast", "v100", 200.0), ("vast", "v100", 300.0),
        ("vast", "v100", 5000.0)]
    learned = learn_starts(samples, last_n=3)
    assert learned.estimate("vast", "Tesla V100").seconds == 300.0  # median of 300, 200, 5000
    assert learned.estimate("vast", "Tesla V100").source == "median of 3 starts"
    assert learned.estimate("basilica", "RTX-A4000").seconds == 42.0
    prior = learned.estimate("basilica", "V100")
    assert (prior.seconds, prior.source) == (PRIOR_START_S["basilica"], "prior (no starts yet)")


def test_ready_time_in_detail_beats_the_row_going_active_and_instance_rows_are_vast():
    row = LedgerEntry(id=1, kind="instance", name="sn-v-u1-x", remote_id="5", state="stopped", owner="",
                      offering_id="9", gpu_type="RTX A4000", gpu_count=1, is_spot=False, hourly_rate=Decimal("0.2"), total_cost=None,
                      detail={"ready_at": 1150.0}, created_at=1000.0, started_at=1002.0)
    assert [(s.provider, s.gpu_model, s.seconds) for s in samples_from_ledger([row])] == [("vast", "rtxa4000", 150.0)]


def test_learned_starts_decide_between_providers_end_to_end():
    samples = [StartSample("vast", "rtxa4000", 600.0, float(i)) for i in range(5)]
    samples += [StartSample("basilica", "rtxa4000", 30.0, float(i)) for i in range(5)]
    basilica = from_basilica(Offering("bas-1", "RTX-A4000", 1, False, Decimal("0.25")))
    vast = from_vast(vast_offer(11, "RTX A4000", "0.15"))
    best = choose([vast, basilica], POLICY, learn_starts(samples), busy_s=120)
    assert best.offer.provider == "basilica" and best.offer.offer_id == "bas-1"


def test_at_equal_cost_per_evaluation_the_faster_start_wins():
    fast = box("vast", "fast", "0.20")  # 0.20 × (60 + 60) s
    slow = box("basilica", "slow", "0.10", gpu="RTX-A4000")  # 0.10 × (180 + 60) s: the same dollars
    learned = LearnedStarts({("vast", "rtxa4000"): (60.0, 4), ("basilica", "rtxa4000"): (180.0, 4)})
    ranked = rank([slow, fast], POLICY, learned, busy_s=60)
    assert ranked[0].cost == ranked[1].cost
    assert [r.offer.offer_id for r in ranked] == ["fast", "slow"]


def test_a_machine_known_to_start_slowly_loses_to_one_known_fast_and_unseen_machines_get_the_models_median():
    def row(i: int, machine: int, seconds: float) -> LedgerEntry:
        return LedgerEntry(id=i, kind="instance", name=f"sn-v-{i}", remote_id=str(i), state="stopped", owner="",
                           offering_id=str(i), gpu_type="RTX A4000", gpu_count=1, is_spot=False, hourly_rate=None,
                           total_cost=None, detail={"machine_id": machine}, created_at=float(i * 10_000),
                           started_at=float(i * 10_000) + seconds)

    learned = learn_starts(samples_from_ledger([row(1, 77, 1500.0), row(2, 77, 1700.0), row(3, 88, 40.0)]))

    def on(machine: int, offer_id: str, hourly: str):
        return from_vast(SimpleNamespace(**vars(vast_offer(int(offer_id), "RTX A4000", hourly)),
                                         raw={"machine_id": machine}))

    slow, fast, unseen = on(77, "1", "0.10"), on(88, "2", "0.20"), on(99, "3", "0.10")
    ranked = rank([slow, fast, unseen], POLICY, learned, busy_s=120)
    assert [r.offer.offer_id for r in ranked] == ["2", "3", "1"]
    assert "on this machine" in ranked[0].why and ranked[0].start_s == 40.0
    assert ranked[1].start_s == 1500.0 and "median of 3 starts" in ranked[1].why  # the model's: 40, 1500, 1700
    assert ranked[2].start_s == 1600.0
