"""The Vast client against the Vast twin over real HTTP on loopback: the cap travels in the search
and is re-checked, what is created is what was asked, 429s are retried and the daily quota is not,
auth errors are one clear error, and the key never shows in a log line, a repr or an error."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import pytest

from subnet.compute.vast import (OfferQuery, VastAuthError, VastClient, VastError, VastNotFound, VastQuotaExceeded,
                                 VastRateLimited)
from subnet.twins.vast import VastTwin, vast_offer

KEY = "vast-canary-key-0c1f2e"
CAP = Decimal("0.40")
BOOK = [
    vast_offer(101, "RTX 4090", "0.35", min_bid="0.12", gpu_ram_gb=24),
    vast_offer(102, "RTX 4090", "0.55", min_bid="0.30", gpu_ram_gb=24),
    vast_offer(103, "RTX 4090", "0.20", gpu_ram_gb=24),  # takes no bids
    vast_offer(104, "RTX 4090", "0.90", min_bid="0.45", gpu_ram_gb=24),
    vast_offer(105, "RTX 3060", "0.08", min_bid="0.03", gpu_ram_gb=12),
    vast_offer(106, "RTX 4090", "0.25", min_bid="0.10", gpu_ram_gb=24, reliability=0.80),
]


@pytest.fixture
def twin():
    with VastTwin(offers=BOOK, api_key=KEY) as twin:
        yield twin


def run(coro_fn, twin, key=KEY, **kw):
    async def go():
        async with VastClient(key, base_url=twin.base_url, backoff=0.01, **kw) as client:
            return await coro_fn(client)
    return asyncio.run(go())


def query(**kw) -> OfferQuery:
    return OfferQuery(**({"gpu_names": ["RTX 4090"], "min_gpu_ram_gb": 20, "max_dph": CAP} | kw))


def searches(twin) -> list[dict]:
    return [r["body"] for r in twin.requests if r["endpoint"] == "POST /bundles/"]


def test_on_demand_search_carries_the_cap_and_returns_nothing_above_it(twin):
    offers = run(lambda c: c.search_offers(query()), twin)
    assert [o.id for o in offers] == [103, 101]  # cheapest first; 102/104 over the cap, 105 too small, 106 unreliable
    assert all(o.dph_total <= CAP and not o.interruptible for o in offers)
    body = searches(twin)[0]
    assert body["dph_total"] == {"lte": 0.40} and body["type"] == "on-demand"
    assert body["gpu_ram"] == {"gte": 20000.0} and body["gpu_name"] == {"eq": "RTX 4090"}
    assert body["verified"] == {"eq": True} and body["rented"] == {"eq": False} and body["rentable"] == {"eq": True}


def test_bid_search_caps_the_min_bid(twin):
    offers = run(lambda c: c.search_offers(query(interruptible=True, max_dph=Decimal("0.35"))), twin)
    assert [o.id for o in offers] == [101, 102]  # 103 takes no bids; 104's min bid is over the cap
    assert all(o.interruptible and o.min_bid <= Decimal("0.35") for o in offers)
    assert offers[1].dph_total == Decimal("0.55")  # its on-demand price is dearer: the bid is what we pay
    body = searches(twin)[0]
    assert body["min_bid"] == {"lte": 0.35} and "dph_total" not in body and body["type"] == "bid"


def test_offers_over_the_cap_are_dropped_even_when_the_server_ignores_the_filter(twin, monkeypatch, caplog):
    monkeypatch.setattr("subnet.twins.vast.twin.search", lambda book, body: [o.row for o in book])
    with caplog.at_level(logging.WARNING):
        offers = run(lambda c: c.search_offers(query()), twin)
    assert offers and all(o.dph_total <= CAP for o in offers)
    assert {o.id for o in offers} == {101, 103, 105, 106}  # the re-check is the cap only: 102 and 104 dropped
    assert "2 offer(s) dropped" in caplog.text


def test_create_describe_destroy(twin):
    async def go(c):
        new = await c.create_instance(101, image="docker.io/m/env@sha256:" + "a" * 64, label="sn-v1-u3-x",
                                      env={"SUBNET_ACTOR_TOKEN": "tok", "-p 8000:8000": "1"}, disk_gb=20)
        seen = await c.instance(new)
        listed = await c.instances()
        await c.destroy_instance(new)
        gone = await c.instance(new)
        with pytest.raises(VastNotFound):
            await c.destroy_instance(new)
        return new, seen, listed, gone
    new, seen, listed, gone = run(go, twin)
    assert seen.id == new and seen.label == "sn-v1-u3-x" and seen.dph_total == Decimal("0.35")
    assert seen.is_bid is False and seen.intended_status == "running" and seen.public_ipaddr == "127.0.0.1"
    assert [i.id for i in listed] == [new] and gone is None
    assert twin.created[0].offer_id == 101 and twin.created[0].price is None
    assert twin.created[0].env_keys == ("-p 8000:8000", "SUBNET_ACTOR_TOKEN")
    create = next(r["body"] for r in twin.requests if r["endpoint"] == "PUT /asks/")
    assert create["runtype"] == "args" and create["disk"] == 20.0 and create["price"] is None


def test_an_on_demand_box_rented_leaves_the_search_and_returns_when_destroyed(twin):
    async def go(c):
        new = await c.create_instance(103, image="img", env={})
        during = {o.id for o in await c.search_offers(query())}
        await c.destroy_instance(new)
        return during, {o.id for o in await c.search_offers(query())}
    during, after = run(go, twin)
    assert 103 not in during and 103 in after


def test_a_bid_under_the_min_bid_is_refused_and_a_bid_can_be_changed(twin):
    async def go(c):
        with pytest.raises(VastError) as low:
            await c.create_instance(101, image="img", price=Decimal("0.05"))
        new = await c.create_instance(101, image="img", price=Decimal("0.15"))
        await c.change_bid(new, Decimal("0.20"))
        return low.value, await c.instance(new)
    low, inst = run(go, twin)
    assert low.status == 400 and "minimum bid" in str(low)
    assert inst.is_bid is True and inst.dph_total == Decimal("0.20")
    assert [c.price for c in twin.created] == [0.15]  # the refused bid rented nothing


def test_listing_follows_pages(twin):
    async def go(c):
        made = [await c.create_instance(101, image="img", price=Decimal("0.2")) for _ in range(30)]
        return made, await c.instances()
    made, listed = run(go, twin)
    assert [i.id for i in listed] == made
    assert len([r for r in twin.requests if r["endpoint"] == "GET /api/v1/instances/"]) == 2  # 25 + 5


def test_balance_is_the_accounts_credit(twin):
    assert run(lambda c: c.balance(), twin) == Decimal("100.0")


def test_429_is_retried_then_succeeds(twin):
    twin.throttle("POST /bundles/", 2)
    offers = run(lambda c: c.search_offers(query()), twin)
    assert [o.id for o in offers] == [103, 101] and len(searches(twin)) == 3


def test_429_that_persists_ends_in_rate_limited(twin):
    twin.throttle("POST /bundles/", 10)
    with pytest.raises(VastRateLimited) as err:
        run(lambda c: c.search_offers(query()), twin, retries=3)
    assert err.value.status == 429 and "too frequent" in str(err.value) and len(searches(twin)) == 3


def test_the_rate_limit_is_per_endpoint(twin):
    twin.limits.rate = (1, 60.0)
    async def go(c):
        await c.search_offers(query())
        with pytest.raises(VastRateLimited):
            await c.search_offers(query())
        return await c.balance()  # another endpoint has its own budget
    assert run(go, twin, retries=2) == Decimal("100.0")


def test_the_daily_search_quota_is_never_retried(twin):
    twin.search_quota(1)
    async def go(c):
        await c.search_offers(query())
        with pytest.raises(VastQuotaExceeded) as err:
            await c.search_offers(query())
        return err.value
    err = run(go, twin)
    assert err.status == 429 and "search_quota_exceeded" in str(err)
    assert len(searches(twin)) == 2  # one each: the exhausted one was not tried again


def test_a_wrong_key_is_an_auth_error(twin):
    with pytest.raises(VastAuthError) as err:
        run(lambda c: c.balance(), twin, key="not-the-key")
    assert err.value.status == 401 and "not-the-key" not in str(err.value)
    assert err.value.exit_code == 4


def test_the_key_never_reaches_a_log_a_repr_or_an_error(twin, caplog):
    twin.search_quota(0)
    twin.throttle("GET /users/current", 10)
    errors = []
    async def go(c):
        errors.append(repr(c))
        for call in (c.search_offers(query()), c.balance(), c.destroy_instance(999), c.create_instance(1, image="i")):
            try:
                await call
            except VastError as exc:
                errors.extend([str(exc), repr(exc)])
    with caplog.at_level(logging.DEBUG):
        run(go, twin)
    assert len(errors) == 9 and "quota" in errors[1] and "too frequent" in errors[3]
    assert caplog.records  # the retries and httpx's request lines were logged ...
    assert KEY not in caplog.text and all(KEY not in e for e in errors)  # ... without the key
    assert KEY not in str(twin.requests)


def test_a_server_that_echoes_the_key_is_redacted(twin, monkeypatch):
    monkeypatch.setattr("subnet.twins.vast.twin.VastTwin._user",
                        lambda self, **kw: (500, {"success": False, "error": "boom", "msg": f"bad key {KEY}"}))
    with pytest.raises(VastError) as err:
        run(lambda c: c.balance(), twin, retries=1)
    assert KEY not in str(err.value) and "[redacted]" in str(err.value)


def test_an_unreachable_create_is_ambiguous_and_not_repeated():
    async def go():
        async with VastClient(KEY, base_url="http://127.0.0.1:9/api/v0", backoff=0.01, timeout=2) as c:
            with pytest.raises(VastError) as err:
                await c.create_instance(1, image="i")
            return err.value
    err = asyncio.run(go())
    assert err.status == 0 and err.ambiguous and KEY not in str(err)
