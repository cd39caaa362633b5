"""The cheapest box across both providers, through the real clients against both twins.

Basilica: the real `basilica` SDK → BasilicaTwin. Vast: our httpx VastClient → VastTwin. A provider
whose search fails is left out with one line and the other one is used.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.policy import GpuPolicy, parse_allowlist
from subnet.compute.providers import BasilicaOffers, VastOffers, cheapest_across, vast_queries
from subnet.compute.selection import LearnedStarts
from subnet.compute.settings import load_settings
from subnet.compute.vast import VastClient
from subnet.twins.basilica_twin import BasilicaTwin, offering
from subnet.twins.vast import VastTwin, vast_offer

BASILICA_TOKEN = "basilica-canary-5d1e"
VAST_KEY = "vast-canary-9c2b"
POLICY = GpuPolicy(parse_allowlist("V100:spot:1,RTX-A4000:ondemand:1"), Decimal("0.30"))

BASILICA_BOOK = [offering("b-a4000", "RTX-A4000", "0.25"), offering("b-v100-spot", "TESLA V100", "0.29", is_spot=True),
                 offering("b-pricey", "RTX-A4000", "0.31")]
VAST_BOOK = [vast_offer(101, "RTX A4000", "0.12"),  # cheapest per hour of all
             vast_offer(102, "RTX A4000", "0.35"),  # over the cap on demand
             vast_offer(103, "Tesla V100", "0.90", min_bid="0.31"),  # a bid over the cap
             vast_offer(104, "Tesla V100", "0.90", min_bid="0.08"),  # a bid under it
             vast_offer(105, "RTX 3090", "0.05")]  # not allowed at all


@pytest.fixture
def twins(monkeypatch, tmp_path):
    for var in ("BASILICA_API_TOKEN", "BASILICA_API_KEY", "BASILICA_API_URL", "VAST_API_KEY", "VAST_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    with BasilicaTwin(token=BASILICA_TOKEN, offerings=BASILICA_BOOK) as basilica, VastTwin(offers=VAST_BOOK,
                                                                                      api_key=VAST_KEY) as vast:
        yield basilica, vast


def select(basilica: BasilicaTwin, vast: VastTwin, learned: LearnedStarts, *, vast_key: str = VAST_KEY):
    lines: list[str] = []

    async def go():
        client = VastClient(vast_key, base_url=vast.base_url, retries=1)
        async with client:
            settings = load_settings(api_key=BASILICA_TOKEN, api_url=basilica.url, retries=1)
            gpu = BasilicaGPUClient(settings, policy=POLICY)
            return await cheapest_across([BasilicaOffers(gpu), VastOffers(client)], POLICY, learned, 120.0,
                                         warn=lines.append)

    return asyncio.run(go()), lines


def test_cheapest_per_evaluation_across_both_and_nothing_over_the_cap(twins):
    basilica, vast = twins
    choice, lines = select(basilica, vast, LearnedStarts({("vast", "rtxa4000"): (60.0, 5),
                                                          ("vast", "v100"): (60.0, 5)}))
    assert lines == [] and choice.left_out == {}
    assert [(r.offer.provider, r.offer.offer_id) for r in choice.ranked] == [
        ("vast", "104"), ("vast", "101"), ("basilica", "b-a4000"), ("basilica", "b-v100-spot")]
    # Over the cap on either market never comes back from Vast's search (the cap is in the query) ...
    searches = [r["body"] for r in vast.requests if r["endpoint"] == "POST /bundles/"]
    assert {(b["type"], next(iter(b.get("dph_total", b.get("min_bid", {})).values()))) for b in searches} == {
        ("on-demand", 0.30), ("bid", 0.30)}
    assert {"102", "103", "105"}.isdisjoint(r.offer.offer_id for r in choice.ranked)
    # ... and Basilica's over-cap box is refused with its reason.
    assert [(o.offer_id, why) for o, why in choice.refused] == [
        ("b-pricey", "box price $0.31/h exceeds SUBNET_MAX_HOURLY_RATE $0.30/h")]


def test_a_cheaper_per_hour_vast_box_with_slow_learned_starts_loses_to_basilica(twins):
    basilica, vast = twins
    vast.set_offers([VAST_BOOK[0]])  # $0.12/h vs Basilica's $0.25/h
    slow_vast = LearnedStarts({("vast", "rtxa4000"): (1200.0, 8), ("basilica", "rtxa4000"): (90.0, 8)})
    choice, _ = select(basilica, vast, slow_vast)
    # 0.12 × 1320 s = $0.044 per evaluation; 0.25 × 210 s = $0.0146
    assert (choice.best.offer.provider, choice.best.offer.offer_id) == ("basilica", "b-a4000")
    assert choice.ranked[-1].offer.offer_id == "101" and "median of 8 starts" in choice.ranked[-1].why


def test_search_quota_exhausted_on_vast_falls_back_to_basilica_with_one_line(twins):
    basilica, vast = twins
    vast.search_quota(0)
    choice, lines = select(basilica, vast, LearnedStarts())
    assert (choice.best.offer.provider, choice.best.offer.offer_id) == ("basilica", "b-a4000")
    assert {r.offer.provider for r in choice.ranked} == {"basilica"}
    assert len(lines) == 1
    assert lines[0].startswith("vast left out of this selection: daily search quota exhausted")
    assert lines[0].endswith("using basilica")
    assert VAST_KEY not in lines[0] and BASILICA_TOKEN not in lines[0]
    # The quota is never retried: one search per query, no more.
    assert len([r for r in vast.requests if r["endpoint"] == "POST /bundles/"]) == 1


def test_a_refused_vast_key_leaves_vast_out_and_basilica_down_leaves_nothing(twins):
    basilica, vast = twins
    choice, lines = select(basilica, vast, LearnedStarts(), vast_key="wrong-key")
    assert choice.best.offer.provider == "basilica" and list(choice.left_out) == ["vast"]
    assert len(lines) == 1 and "key refused" in lines[0] and "wrong-key" not in lines[0]
    basilica.fault("GET /v2/secure-cloud/gpu-prices", 503, times=5, message="maintenance")
    vast.search_quota(0)
    choice, lines = select(basilica, vast, LearnedStarts())
    assert choice.best is None and set(choice.left_out) == {"basilica", "vast"}
    assert len(lines) == 2 and all(line.endswith("no provider left") for line in lines)
    assert "maintenance" in choice.left_out["basilica"]


def test_one_query_per_market_and_count_with_vast_spellings():
    policy = GpuPolicy(parse_allowlist("V100:spot:1,RTX-A4000:ondemand:1,RTX-A4000:ondemand:2,V100:ondemand:1"),
                       Decimal("0.44"))
    queries = [(q.interruptible, q.num_gpus, tuple(q.gpu_names), q.max_dph) for q in vast_queries(policy)]
    assert queries == [(False, 1, ("RTX A4000", "Tesla V100"), Decimal("0.44")),
                       (False, 2, ("RTX A4000",), Decimal("0.44")),
                       (True, 1, ("Tesla V100",), Decimal("0.44"))]


def test_the_cap_is_subnet_max_hourly_rate_and_basilica_max_hourly_rate_still_works(monkeypatch, tmp_path):
    from subnet.compute.policy import PolicyFormatError
    from subnet.compute.providers import load_policy

    for var in ("SUBNET_MAX_HOURLY_RATE", "BASILICA_MAX_HOURLY_RATE", "SUBNET_ALLOWED_GPU_TYPES",
                "BASILICA_ALLOWED_GPU_TYPES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_policy().max_hourly_rate == Decimal("0.44")  # the documented default
    (tmp_path / ".env").write_text("BASILICA_MAX_HOURLY_RATE=0.35\n")
    assert load_policy().max_hourly_rate == Decimal("0.35")  # the old name, from .env
    monkeypatch.setenv("BASILICA_MAX_HOURLY_RATE", "0.33")
    assert load_policy().max_hourly_rate == Decimal("0.33")  # environment beats .env
    monkeypatch.setenv("SUBNET_MAX_HOURLY_RATE", "0.2")
    monkeypatch.setenv("BASILICA_ALLOWED_GPU_TYPES", "H100:ondemand:1")
    policy = load_policy()
    assert policy.max_hourly_rate == Decimal("0.2") and policy.describe_allowlist() == "H100:ondemand:1"
    monkeypatch.setenv("SUBNET_MAX_HOURLY_RATE", "lots")
    with pytest.raises(PolicyFormatError, match="^SUBNET_MAX_HOURLY_RATE: 'lots' is not a number"):
        load_policy()


def test_subnet_max_hourly_rate_binds_basilicas_own_choice_too(twins, monkeypatch):
    """The Basilica runtime picks its GPU with BasilicaSettings.policy(): the one cap holds there as well."""
    basilica, _ = twins
    monkeypatch.setenv("BASILICA_MAX_HOURLY_RATE", "0.44")
    monkeypatch.setenv("SUBNET_MAX_HOURLY_RATE", "0.26")
    monkeypatch.setenv("SUBNET_ALLOWED_GPU_TYPES", "RTX-A4000:ondemand:1")
    settings = load_settings(api_key=BASILICA_TOKEN, api_url=basilica.url, retries=1)
    assert settings.cap == Decimal("0.26")
    assert [o.id for o in BasilicaGPUClient(settings).list_cheap_gpus()] == ["b-a4000"]
    monkeypatch.setenv("SUBNET_MAX_HOURLY_RATE", "0.2")
    assert BasilicaGPUClient(load_settings(api_key=BASILICA_TOKEN, api_url=basilica.url)).list_cheap_gpus() == []


@pytest.mark.parametrize("where", ["environment", ".env"])
@pytest.mark.parametrize("name, value, expected", [
    ("SUBNET_MAX_HOURLY_RATE", "lots", "SUBNET_MAX_HOURLY_RATE: 'lots' is not a number"),
    ("BASILICA_MAX_HOURLY_RATE", "-1", "BASILICA_MAX_HOURLY_RATE: '-1' must be a positive number"),
    ("SUBNET_ALLOWED_GPU_TYPES", "A100:someday:1", "SUBNET_ALLOWED_GPU_TYPES: "),
    ("BASILICA_ALLOWED_GPU_TYPES", "A100:someday:1", "BASILICA_ALLOWED_GPU_TYPES: "),
])
def test_a_bad_cap_or_allowlist_names_the_variable_that_held_it(monkeypatch, tmp_path, where, name, value, expected):
    """Both readers of the one policy (the cross-provider one and Basilica's settings) name the variable
    the operator set, not the other spelling."""
    from subnet.compute.policy import PolicyFormatError
    from subnet.compute.providers import load_policy
    from subnet.compute.settings import ConfigError

    for var in ("SUBNET_MAX_HOURLY_RATE", "BASILICA_MAX_HOURLY_RATE", "SUBNET_ALLOWED_GPU_TYPES",
                "BASILICA_ALLOWED_GPU_TYPES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    if where == "environment":
        monkeypatch.setenv(name, value)
    else:
        (tmp_path / ".env").write_text(f"{name}={value}\n")
    with pytest.raises(PolicyFormatError) as from_policy:
        load_policy()
    with pytest.raises(ConfigError) as from_settings:
        load_settings(api_key="k")
    for raised in (from_policy.value, from_settings.value):
        assert str(raised).startswith(expected) and "\n" not in str(raised), raised
