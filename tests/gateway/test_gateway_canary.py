"""The validator's upstream key (a canary) is in no log line and no response, whatever happens."""

from __future__ import annotations

import logging

import httpx
import openai
import pytest

from gateway.conftest import CANARY, client


def test_the_upstream_key_is_never_logged_nor_returned(make_gateway, twin, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, every thread: httpx, uvicorn, openai, ours
    gw = make_gateway(llm_task_budget_usd=0.0015)
    assert CANARY not in repr(gw.settings) and CANARY not in str(gw.settings.model_dump())
    grant = gw.grant(1, 1, "hk1")
    assert grant.token not in repr(grant)
    gw.begin_task(1, 1, 0)
    sdk = client(gw, grant.token, max_retries=0)
    sdk.chat.completions.create(model="twin/echo", messages=[{"role": "user", "content": "hi"}])
    list(sdk.chat.completions.create(model="twin/long", messages=[{"role": "user", "content": "x"}], stream=True))
    twin.rate_limit_next(1, retry_after=3)
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model="twin/echo", messages=[{"role": "user", "content": "hi"}])
    for model in ("twin/long", "twin/unlisted"):
        with pytest.raises(openai.APIStatusError):
            sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
    gw.end_task(1, 1, 0)
    gw.close_round(1)

    bodies = []
    with httpx.Client(base_url=gw.local_url) as raw:
        auth = {"authorization": f"Bearer {grant.token}"}
        for resp in (raw.get("/models", headers=auth), raw.get("/models"),
                     raw.post("/chat/completions", headers=auth, json={"model": "twin/echo", "messages": []}),
                     raw.post("/chat/completions", content=b"not json", headers=auth)):
            bodies.append(resp.text + repr(dict(resp.headers)))
    assert all(CANARY not in text for text in bodies)
    assert twin.requests and all(h["authorization"] == f"Bearer {CANARY}" for h, _ in twin.requests)
    assert caplog.records, "the run logged nothing: the check would prove nothing"
    assert CANARY not in caplog.text
    assert all(CANARY not in str(r.args) for r in caplog.records)


def test_a_bad_upstream_key_answers_without_echoing_either_key(twin, tmp_path, monkeypatch):
    # The upstream refuses the key (401): the client sees the upstream's error, not a key.
    from prometheus_client import CollectorRegistry

    from subnet.gateway import Gateway, GatewaySettings
    import asyncio
    monkeypatch.delenv("SUBNET_LLM_API_KEY", raising=False)
    monkeypatch.setenv("CHUTES_API_KEY", "canary-wrong-key")
    settings = GatewaySettings(_env_file=None, llm_upstream=twin.url, llm_models="twin/echo")
    assert settings.llm_api_key.get_secret_value() == "canary-wrong-key"  # CHUTES_API_KEY is the fallback
    gw = Gateway(settings, usage_db=tmp_path / "u.sqlite", registry=CollectorRegistry())
    asyncio.run(gw.start())
    try:
        grant = gw.grant(1, 1, "hk")
        gw.begin_task(1, 1, 0)
        with pytest.raises(openai.AuthenticationError) as caught:
            client(gw, grant.token).chat.completions.create(model="twin/echo",
                                                            messages=[{"role": "user", "content": "x"}])
        assert "canary" not in caught.value.response.text
        assert gw.end_task(1, 1, 0) == 0.0
    finally:
        asyncio.run(gw.stop())
