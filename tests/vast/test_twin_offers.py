"""How the twin filters its offer book (pure): the query language's operators in wire units, the
defaults, order and limit, bid searches, and the 429 budget per (endpoint, key) over a window."""

from __future__ import annotations

import pytest

from subnet.compute.vast import OfferQuery
from subnet.twins.vast.offers import search, vast_offer
from subnet.twins.vast.state import Limits, wanted_ports

BOOK = [vast_offer(1, "RTX 4090", "0.50", min_bid="0.20", gpu_ram_gb=24, reliability=0.99),
        vast_offer(2, "RTX 3090", "0.25", gpu_ram_gb=24, reliability=0.97),
        vast_offer(3, "A100 SXM4", "1.10", min_bid="0.60", gpu_ram_gb=80, verified=False),
        vast_offer(4, "RTX 4090", "0.40", min_bid="0.15", gpu_ram_gb=24, num_gpus=2)]


def ids(body: dict) -> list[int]:
    return [row["id"] for row in search(BOOK, body)]


def test_operators_in_wire_units():
    assert ids({"gpu_name": {"in": ["RTX 4090", "RTX 3090"]}, "order": [["id", "asc"]]}) == [1, 2, 4]
    assert ids({"gpu_name": {"notin": ["RTX 4090"]}, "order": [["id", "asc"]]}) == [2, 3]
    assert ids({"gpu_ram": {"gte": 40_000}}) == [3]  # 40 GB on the wire is 40000
    assert ids({"num_gpus": {"neq": 1}}) == [4]
    assert ids({"dph_total": {"gt": 0.25, "lt": 1.0}, "order": [["dph_total", "asc"]]}) == [4, 1]


def test_a_row_without_the_field_fails_its_filter_and_bids_need_a_min_bid():
    assert 2 not in ids({"min_bid": {"lte": 1.0}})
    assert ids({"type": "bid", "order": [["min_bid", "asc"]]}) == [4, 1, 3]
    assert all(row["is_bid"] for row in search(BOOK, {"type": "bid"}))


def test_our_query_against_the_book():
    on_demand = OfferQuery(gpu_names=["RTX 4090", "RTX 3090"], min_gpu_ram_gb=20, max_dph=None, limit=1).to_wire()
    assert ids(on_demand) == [2]  # cheapest verified single-GPU box, limit 1
    unverified = OfferQuery(gpu_names=["A100 SXM4"], verified=False, interruptible=True).to_wire()
    assert ids(unverified) == [3] and ids(OfferQuery(gpu_names=["A100 SXM4"]).to_wire()) == []


def test_default_order_is_score_descending_and_limit_applies():
    assert ids({"limit": 2}) == [2, 4]  # score = 100 / dph_total here


def test_a_bad_body_is_refused():
    with pytest.raises(ValueError):
        search(BOOK, {"dph_total": {"about": 1}})
    with pytest.raises(ValueError):
        search(BOOK, {"type": "spot"})


def test_rate_budget_per_endpoint_and_key_over_a_window():
    now = [0.0]
    limits = Limits((2, 10.0), clock=lambda: now[0])
    assert [limits.too_frequent("POST /bundles/", "k") for _ in range(3)] == [False, False, True]
    assert not limits.too_frequent("PUT /asks/", "k") and not limits.too_frequent("POST /bundles/", "other")
    now[0] = 10.5
    assert not limits.too_frequent("POST /bundles/", "k")


def test_search_quota_counts_down_per_key():
    limits = Limits()
    limits.quota_all = 1
    assert limits.search_allowed("a") and not limits.search_allowed("a") and limits.search_allowed("b")


def test_ports_come_from_docker_options_in_env():
    assert wanted_ports({"-p 8000:8000": "1", "-p 22:22/tcp": "1", "TOKEN": "x", "-e X": "1"}) == (8000, 22)
