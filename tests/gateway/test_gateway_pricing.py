"""Prices from configuration and from Chutes' /v1/models shape; the reservation plan (pure)."""

from __future__ import annotations

import pytest

from subnet.gateway.budget import Plan, Refusal, plan_call
from subnet.gateway.pricing import Price, parse_configured_prices, prices_from_listing, prompt_token_bound

# One entry as https://llm.chutes.ai/v1/models lists it (Veightor/chutes-agent-toolkit: data/chutes-models.json).
CHUTES_ENTRY = {"id": "Qwen/Qwen3-32B-TEE", "object": "model",
                "price": {"input": {"tao": 0.00052, "usd": 0.104}, "output": {"tao": 0.0021, "usd": 0.416}},
                "pricing": {"completion": 0.416, "input_cache_read": 0.052, "prompt": 0.104}}


def test_chutes_listing_prices_are_per_million_tokens():
    assert prices_from_listing({"data": [CHUTES_ENTRY]}) == {"Qwen/Qwen3-32B-TEE": Price(0.104, 0.416)}


def test_listings_whose_unit_is_in_doubt_give_no_price():
    per_token_strings = {"id": "a", "pricing": {"prompt": "0.0000001", "completion": "0.0000004"}}
    disagreeing = {**CHUTES_ENTRY, "id": "b", "price": {"input": {"usd": 104.0}, "output": {"usd": 416.0}}}
    assert prices_from_listing({"data": [per_token_strings, disagreeing, {"id": "c"}, "junk"]}) == {}
    assert prices_from_listing("not a listing") == {}


def test_configured_prices_and_their_one_line_errors():
    assert parse_configured_prices("m=0.1/0.4, org/x=1/2") == {"m": Price(0.1, 0.4), "org/x": Price(1, 2)}
    for bad in ("m=0.1", "=1/2", "m=a/b", "m=-1/2"):
        with pytest.raises(ValueError, match="USD per 1M"):
            parse_configured_prices(bad)


def test_plan_clamps_to_the_request_the_operator_and_the_budget():
    price = Price(1.0, 10.0)  # $1e-5 per completion token
    common = dict(clamp=100, prompt_tokens=1000, price=price)  # prompt: $0.001
    assert plan_call(requested=None, task_left_usd=1, round_left_usd=1, **common).max_tokens == 100
    assert plan_call(requested=7, task_left_usd=1, round_left_usd=1, **common).max_tokens == 7
    tight = plan_call(requested=None, task_left_usd=0.0015, round_left_usd=1, **common)
    assert tight == Plan(50, pytest.approx(0.0015))
    refused = plan_call(requested=None, task_left_usd=1, round_left_usd=0.001, **common)
    assert isinstance(refused, Refusal) and "round budget" in refused.message


def test_prompt_bound_covers_every_byte():
    assert prompt_token_bound(1000, 3) >= 1000 + 3
