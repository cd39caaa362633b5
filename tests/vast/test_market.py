"""The cloud runtime (`--mode cloud`) against both twins, with real Actors on both: each round runs on
the provider whose best allowed offer is cheapest per evaluation; a provider whose search fails is
left out with one line; nothing above the cap is ever rented on either."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest

from envs_factory import make_env
from subnet.compute.ledger import Ledger
from subnet.compute.providers import load_policy
from subnet.runtime.market import RoundOffers
from subnet.twins.basilica_twin import offering
from subnet.twins.vast.offers import vast_offer
from subnet.util import aio

from market_support import CAP, basilica_runtime, market_for, past_starts, run_round, start_twins

BASILICA_BOOK = [offering("b-a4000", "RTX-A4000", "0.16"),
                 offering("b-v100-spot", "TESLA V100", "0.05", is_spot=True, gpu_count=2),  # not allowed (x2)
                 offering("b-pricey", "RTX-A4000", "0.31")]  # over the cap
VAST_BOOK = [vast_offer(101, "RTX A4000", "0.12", start_s=30),  # cheapest allowed per hour of all
             vast_offer(102, "RTX A4000", "0.14", start_s=30),
             vast_offer(103, "RTX A4000", "0.29", start_s=30),
             vast_offer(104, "RTX A4000", "0.08", num_gpus=2, start_s=30),  # not allowed (x2)
             vast_offer(105, "Tesla V100", "0.60", min_bid="0.31", start_s=30),  # a bid over the cap
             vast_offer(106, "RTX 3090", "0.05", start_s=30)]  # not allowed at all


@pytest.fixture
def envs(tmp_path):
    root = tmp_path / "envs"
    return {1: make_env(root, "honest", "m1"), 2: make_env(root, "honest", "m2"), 3: make_env(root, "wrong", "m3")}


@pytest.fixture
def twins(envs, monkeypatch, tmp_path):
    with start_twins(envs, monkeypatch, tmp_path, BASILICA_BOOK, VAST_BOOK) as both:
        yield both


def assert_nothing_above_the_cap(twins) -> None:
    """The twins' own records: what Vast was asked to rent, and what Basilica was asked to deploy."""
    prices = {o.row["id"]: Decimal(str(o.row["dph_total"])) for o in twins.vast.book}
    for created in twins.vast.created:
        assert prices[created.offer_id] <= CAP and created.offer_id not in (104, 105, 106), created
        assert created.price is None or Decimal(str(created.price)) <= CAP
    # Basilica takes no price: the cap holds at the choice, so each deployment asked for the allowed
    # GPU model and its ledger row carries the listed price it was chosen at.
    assert all("A4000" in json.dumps(body) for body in twins.basilica_posts())
    rows = [r for r in Ledger(twins.home / "state.sqlite").entries() if not r.name.startswith("history-")]
    assert all(r.hourly_rate is not None and r.hourly_rate <= CAP for r in rows if r.remote_id), rows


def ours(caplog) -> list[str]:
    """Warnings from this package (asyncio's own about closed loops of other tests are not ours)."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("subnet")]


def verified(outcome) -> bool:
    return all(t.verified for t in outcome.tasks)


@pytest.mark.parametrize("vast_start_s, winner", [(60.0, "vast"), (1500.0, "basilica")])
def test_each_miner_runs_where_an_evaluation_is_cheapest(twins, vast_start_s, winner):
    """Vast's $0.12/h and $0.14/h boxes against Basilica's $0.16/h: with Vast's learned starts of a
    minute those two Vast boxes are the best, and the third miner goes to Basilica rather than to
    Vast's $0.29/h box; with starts of 25 minutes (its host pulls slowly) the dearer-per-hour Basilica
    box is cheaper per evaluation and every miner of the round is deployed there."""
    market, ledger = market_for(twins)
    past_starts(ledger, "vast", "RTX A4000", vast_start_s)
    past_starts(ledger, "basilica", "RTX-A4000", 120.0)
    refusal, outcomes = run_round(market, uids=(1, 2, 3))
    assert refusal is None
    assert verified(outcomes[1]) and verified(outcomes[2])  # the honest Actors are paid ...
    assert outcomes[3].faults == {"wrong_answer": 3}  # ... the dishonest one is judged as usual
    choice = market.choice
    assert choice.provider == winner and choice.left_out == {}
    other = "basilica" if winner == "vast" else "vast"
    assert other in choice.others and "$" in choice.why
    rented_on = sorted(o.hourly_price for o in outcomes.values())
    if winner == "vast":
        assert sorted(c.offer_id for c in twins.vast.created) == [101, 102]  # cheapest first, each once
        assert len(twins.basilica_posts()) == 1
        assert rented_on == [0.12, 0.14, 0.16] and choice.to_json()["placed"] == {"vast": 2, "basilica": 1}
    else:
        assert twins.vast.created == []
        assert len(twins.basilica_posts()) == 3 and rented_on == [0.16] * 3
        assert choice.to_json()["placed"] == {"basilica": 3}
    assert twins.vast.instances == {} and twins.basilica.deployments == {}  # none outlives its round
    assert_nothing_above_the_cap(twins)


def test_vast_search_quota_spent_runs_the_round_on_basilica_with_one_line(twins, caplog):
    twins.vast.search_quota(0)  # Vast's daily search quota: `search_quota_exceeded`, never retried
    market, ledger = market_for(twins)
    past_starts(ledger, "vast", "RTX A4000", 30.0)  # Vast would win if it could search
    with caplog.at_level(logging.WARNING):
        refusal, outcomes = run_round(market, uids=(1, 3))
    assert refusal is None
    assert market.choice.provider == "basilica" and "vast" in market.choice.left_out
    lines = ours(caplog)
    assert len(lines) == 1, lines
    assert lines[0].startswith("vast left out of this round:") and "quota" in lines[0]
    assert lines[0].endswith("using basilica")
    assert verified(outcomes[1]) and outcomes[1].hourly_price == 0.16  # the honest env paid ...
    assert outcomes[3].faults == {"wrong_answer": 3}  # ... the wrong one not
    assert twins.vast.created == [] and len(twins.basilica_posts()) == 2
    assert twins.basilica.deployments == {}
    assert_nothing_above_the_cap(twins)


def test_no_provider_left_skips_the_round_with_one_line(twins, caplog):
    twins.vast.search_quota(0)
    twins.basilica.set_offerings([offering("b-pricey", "RTX-A4000", "0.31")])  # nothing under the cap
    market, _ = market_for(twins)
    with caplog.at_level(logging.WARNING):
        refusal, outcomes = run_round(market)
    assert refusal.startswith("round skipped: no GPU provider can run this round: ")
    assert "basilica:" in refusal and "vast:" in refusal and "quota" in refusal
    assert "\n" not in refusal and outcomes == {}
    assert ours(caplog) == []  # the round service logs the one line it returns
    assert twins.vast.created == [] and twins.basilica_posts() == []
    assert market.choice is None


@pytest.mark.parametrize("only", ["basilica", "vast"])
def test_one_provider_alone_runs_the_round(twins, only):
    market, _ = market_for(twins, providers=(only,))
    refusal, outcomes = run_round(market, uids=(1,))
    assert refusal is None and verified(outcomes[1])
    assert market.choice.provider == only and market.choice.others == {}
    assert (len(twins.vast.created), len(twins.basilica_posts())) == ((1, 0) if only == "vast" else (0, 1))
    assert_nothing_above_the_cap(twins)


def test_basilica_offer_side_is_the_runtimes_public_cheapest_offering(twins):
    """The cloud runtime reads Basilica's offer through `BasilicaRuntime.cheapest_offering()` (public):
    the cheapest allowed listed offering, the same one the runtime's open() deploys on."""
    runtime = basilica_runtime(twins.home)
    offering = aio.run(runtime.cheapest_offering())
    assert (offering.id, offering.box_hourly_rate) == ("b-a4000", Decimal("0.16"))
    offers = aio.run(RoundOffers(runtime).offers(load_policy()))
    assert [(o.provider, o.offer_id, o.hourly_usd) for o in offers] == [("basilica", "b-a4000", Decimal("0.16"))]


def test_a_vast_key_revoked_mid_run_costs_one_line_per_round(twins, caplog):
    """The key worked at start and is revoked later: each round Vast's reclaim and its search are both
    refused, and the operator reads one line per round (the drop-out, naming the refusal), not two."""
    market, _ = market_for(twins)
    twins.vast.api_key = "rotated-by-the-operator"  # every call with the old key: 401
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            refusal, outcomes = run_round(market, uids=(1,))
        assert refusal is None and verified(outcomes[1]) and market.choice.provider == "basilica"
        lines = ours(caplog)
        assert len(lines) == 1, lines
        assert lines[0].startswith("vast left out of this round:") and lines[0].endswith("using basilica")
        assert "key" in lines[0].lower() and "rotated" not in lines[0]
    assert twins.vast.created == [] and twins.basilica.deployments == {}
