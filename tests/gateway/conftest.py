"""A started twin upstream (which demands the canary key) and a factory of started gateways."""

from __future__ import annotations

import asyncio

import openai
import pytest
from prometheus_client import CollectorRegistry

from subnet.gateway import Gateway, GatewaySettings
from subnet.twins.llm_upstream import LlmUpstreamTwin

CANARY = "canary-7f3b9c1e-validator-llm-key"
LONG_TEXT = " ".join(f"w{i}" for i in range(200))
PRICES = {"twin/echo": (0.10, 0.40), "twin/long": (2.0, 50.0), "twin/unlisted": (0.1, 0.1)}


def echo(messages: list[dict]) -> str:
    return "echo: " + str(messages[-1]["content"])


@pytest.fixture
def twin():
    upstream = LlmUpstreamTwin({"twin/echo": echo, "twin/long": lambda m: LONG_TEXT, "twin/unlisted": echo},
                               prices=PRICES, api_key=CANARY).start()
    yield upstream
    upstream.stop()


@pytest.fixture
def make_gateway(twin, tmp_path, monkeypatch):
    monkeypatch.setenv("SUBNET_LLM_API_KEY", CANARY)  # resolved by GatewaySettings, like a validator's
    started: list[Gateway] = []

    def make(db_name: str = "usage.sqlite", **overrides) -> Gateway:
        fields = dict(llm_upstream=twin.url, llm_models="twin/echo,twin/long", llm_task_budget_usd=0.01,
                      llm_round_budget_usd=0.05, llm_settle_wait_s=0.5)
        settings = GatewaySettings(_env_file=None, **{**fields, **overrides})
        gw = Gateway(settings, usage_db=tmp_path / db_name, registry=CollectorRegistry())
        asyncio.run(gw.start())
        started.append(gw)
        return gw

    yield make
    for gw in started:
        if gw._server is not None and gw._server.running:
            asyncio.run(gw.stop())


def client(gw: Gateway, token: str, **kw) -> openai.OpenAI:
    """The real SDK, configured the way an Actor's is: base URL and key only."""
    return openai.OpenAI(base_url=gw.local_url, api_key=token, **kw)


def sample(gw: Gateway, name: str, labels: dict) -> float:
    return gw.metrics.registry.get_sample_value(name, labels) or 0.0


def cost(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    p, c = PRICES[model]
    return (prompt_tokens * p + completion_tokens * c) / 1e6
