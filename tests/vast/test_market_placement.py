"""The cloud runtime places each miner on the best box left across both markets (both twins, real
Actors): Vast's boxes run out → the rest go to Basilica; a start refused before anything ran moves
that miner to the other market once, with one line; a miner's own start failure is never retried
elsewhere; nothing above the cap is rented, and no miner ever has two boxes."""

from __future__ import annotations

import logging
from collections import Counter
from decimal import Decimal

import pytest

from envs_factory import make_broken_env, make_env
from subnet.compute.placement import RoundPlan
from subnet.compute.policy import Offering
from subnet.compute.selection import BoxOffer, Ranked
from subnet.runtime.market import one_per_request
from subnet.twins.basilica_twin import offering
from subnet.twins.vast.offers import vast_offer

from market_support import market_for, past_starts, run_round, start_twins
from test_market import assert_nothing_above_the_cap, ours, verified

BASILICA_BOOK = [offering("b-a4000", "RTX-A4000", "0.16"), offering("b-pricey", "RTX-A4000", "0.31")]
HONEST = (1, 2, 4, 5)


def vast_book():  # fresh rows per test: the twin marks a row rented in place
    return [vast_offer(101, "RTX A4000", "0.12", start_s=30), vast_offer(102, "RTX A4000", "0.14", start_s=30),
            vast_offer(103, "RTX A4000", "0.29", start_s=30),  # allowed, but dearer per eval than Basilica
            vast_offer(105, "Tesla V100", "0.60", min_bid="0.31", start_s=30)]  # a bid over the cap


@pytest.fixture
def twins(tmp_path, monkeypatch):
    root = tmp_path / "envs"
    envs = {uid: make_env(root, "honest", f"m{uid}") for uid in HONEST}
    envs |= {3: make_env(root, "wrong", "m3"), 6: make_broken_env(root, "exits_at_import")}
    with start_twins(envs, monkeypatch, tmp_path, BASILICA_BOOK, vast_book()) as both:
        market, ledger = market_for(both)
        past_starts(ledger, "vast", "RTX A4000", 60.0)  # Vast's hosts start in a minute: its cheap boxes win
        past_starts(ledger, "basilica", "RTX-A4000", 120.0)
        yield both, market


def labels_per_uid(twins) -> Counter:
    """How many boxes each miner got, from both twins' own records (Vast labels and Basilica names
    both carry `-u<uid>-`)."""
    names = [c.label for c in twins.vast.created] + [b.get("name", "") for b in twins.basilica_posts()]
    return Counter(n.split("-u", 1)[1].split("-", 1)[0] for n in names if n and "-u" in n)


def test_more_miners_than_vast_boxes_places_the_rest_on_basilica(twins):
    """Vast has two boxes better than Basilica's; five miners: two on Vast, three on Basilica, every
    honest one paid, the dishonest one judged as usual."""
    twins, market = twins
    twins.vast.set_offers([vast_offer(101, "RTX A4000", "0.12", start_s=30),
                           vast_offer(102, "RTX A4000", "0.14", start_s=30)])
    refusal, outcomes = run_round(market, uids=(*HONEST, 3))
    assert refusal is None
    assert all(verified(outcomes[uid]) for uid in HONEST)
    assert outcomes[3].faults == {"wrong_answer": 3}
    assert sorted(c.offer_id for c in twins.vast.created) == [101, 102]
    assert len(twins.basilica_posts()) == 3
    assert market.choice.to_json()["placed"] == {"vast": 2, "basilica": 3}
    assert Counter(o.hourly_price for o in outcomes.values()) == {0.12: 1, 0.14: 1, 0.16: 3}
    assert set(labels_per_uid(twins).values()) == {1}  # one box per miner
    assert twins.vast.instances == {} and twins.basilica.deployments == {}
    assert_nothing_above_the_cap(twins)


def test_a_vast_box_rented_away_after_the_search_starts_its_miner_on_basilica(twins, caplog):
    """Between the round's search and the create, another account rents the best Vast box: Vast
    refuses the create (no_such_ask), the miner is started on Basilica, paid, with one line."""
    twins, market = twins
    with caplog.at_level(logging.WARNING):
        refusal, outcomes = run_round(market, uids=(1, 2), between=lambda: twins.vast.rented_by_another(101))
    assert refusal is None and verified(outcomes[1]) and verified(outcomes[2])
    lines = ours(caplog)
    assert len(lines) == 1, lines
    assert lines[0].startswith("vast refused to start uid ") and "offer 101" in lines[0]
    assert lines[0].endswith("; starting it on basilica")
    assert [c.offer_id for c in twins.vast.created] == [102]  # the create on 101 was refused: nothing rented
    assert len(twins.basilica_posts()) == 1
    assert sorted(o.hourly_price for o in outcomes.values()) == [0.14, 0.16]
    assert market.choice.to_json()["placed"] == {"vast": 1, "basilica": 1}
    assert set(labels_per_uid(twins).values()) == {1}
    assert twins.vast.instances == {} and twins.basilica.deployments == {}
    assert_nothing_above_the_cap(twins)


def test_a_basilica_deployment_refused_starts_its_miner_on_vast(twins, caplog):
    """Basilica is the best (Vast's hosts slow) but refuses a create (no node with the GPU): that
    miner goes to Vast's best box, with one line."""
    twins, market = twins
    past_starts(market.providers[0].client.ledger, "vast", "RTX A4000", 1500.0, n=20)  # Vast slow now
    twins.basilica.fault("POST /deployments", 409, message="no node with the requested GPU")
    with caplog.at_level(logging.WARNING):
        refusal, outcomes = run_round(market, uids=(1,))
    assert refusal is None and verified(outcomes[1])
    assert market.choice.provider == "basilica"
    lines = ours(caplog)
    assert len(lines) == 1 and lines[0].startswith("basilica refused to start uid 1 ("), lines
    assert lines[0].endswith("starting it on vast")
    assert [c.offer_id for c in twins.vast.created] == [101] and outcomes[1].hourly_price == 0.12
    assert market.choice.to_json()["placed"] == {"vast": 1}
    assert twins.vast.instances == {} and twins.basilica.deployments == {}
    assert_nothing_above_the_cap(twins)


def test_an_image_that_exits_at_start_is_not_retried_on_the_other_market(twins, caplog):
    """The miner's own fault: start_failed where it ran, never a second box elsewhere."""
    twins, market = twins
    with caplog.at_level(logging.WARNING):
        refusal, outcomes = run_round(market, uids=(6,))
    assert refusal is None
    assert outcomes[6].faults == {"start_failed": 3}, outcomes[6].tasks
    assert [c.offer_id for c in twins.vast.created] == [101] and twins.basilica_posts() == []
    assert not any("refused to start" in line for line in ours(caplog))
    assert market.choice.to_json()["placed"] == {}
    assert twins.vast.instances == {}
    assert_nothing_above_the_cap(twins)


def ranked(provider: str, offer_id: str, cost: str) -> Ranked:
    offer = BoxOffer(provider, offer_id, "RTX-A4000", 1, 16.0, Decimal(cost), False, 0.99, {})
    return Ranked(offer, Decimal(cost), 60.0, "")


def test_round_plan_hands_a_vast_box_out_once_and_a_basilica_request_until_refused():
    plan = RoundPlan([ranked("vast", "1", "0.01"), ranked("basilica", "b", "0.02"), ranked("vast", "2", "0.03")])
    assert [plan.take().offer.offer_id for _ in range(3)] == ["1", "b", "b"]  # Vast's box once, Basilica's on
    assert plan.take(not_on={"basilica"}).offer.offer_id == "2"
    plan.refused(ranked("basilica", "b", "0.02"))
    assert plan.take() is None and plan.providers_left() == set()


def test_round_plan_counts_miners_started_per_provider():
    plan = RoundPlan([ranked("vast", "1", "0.01"), ranked("basilica", "b", "0.02")])
    for _ in range(3):
        plan.started(plan.take())
    assert plan.placed == {"vast": 1, "basilica": 2}


def test_basilica_offers_one_choice_per_request_the_cheapest():
    """A deployment asks for a GPU model, count and market: a dearer offering of the same request adds
    nothing; another request (on demand vs spot) is its own choice."""
    book = [offering("v-spot", "TESLA V100", "0.05", is_spot=True),
            offering("v-spot-b", "Tesla V100", "0.07", is_spot=True), offering("v-od", "TESLA V100", "0.15")]
    boxes = one_per_request([Offering(o["id"], o["gpu_type"], o["gpu_count"], o["is_spot"],
                                      Decimal(o["hourly_rate_per_gpu"]), o["provider"], o["region"],
                                      o["gpu_memory_gb_per_gpu"]) for o in book])
    assert [b.offer_id for b in boxes] == ["v-spot", "v-od"]


def test_a_challenge_that_needs_no_gpu_takes_any_gpu_model_on_vast_and_a_cpu_deployment_on_basilica(twins):
    """An LLM challenge needs no GPU: Vast (GPU machines only) offers its cheapest box of ANY model under
    the cap (an RTX 4090, not in the allowlist), Basilica a CPU-only deployment at BASILICA_CPU_HOURLY_RATE;
    both compete per evaluation as usual. Nothing above the cap is rented, and no GPU is asked of Basilica."""
    twins, market = twins
    twins.vast.set_offers([vast_offer(201, "RTX 4090", "0.03", start_s=30),
                           vast_offer(202, "H100 SXM", "2.50", start_s=30)])  # any model, but above the cap
    market.set_needs_gpu(False)
    refusal, outcomes = run_round(market, uids=(1, 2, 4))
    assert refusal is None and all(verified(outcomes[uid]) for uid in (1, 2, 4))
    assert [c.offer_id for c in twins.vast.created] == [201]  # the one cheap box, then Basilica's CPU choice
    posts = twins.basilica_posts()
    assert len(posts) == 2 and all("gpus" not in (body.get("resources") or {}) for body in posts)
    assert Counter((o.gpu_type, o.hourly_price) for o in outcomes.values()) == {("RTX 4090", 0.03): 1,
                                                                                ("CPU", 0.10): 2}
    assert market.choice.to_json()["placed"] == {"vast": 1, "basilica": 2}
    assert twins.vast.instances == {} and twins.basilica.deployments == {}
    market.set_needs_gpu(True)  # the allowlist is back for a GPU challenge: the 4090 is not allowed
    assert "RTX 4090" in (market.policy.refusal(Offering("x", "RTX 4090", 1, False, Decimal("0.03"))) or "")
