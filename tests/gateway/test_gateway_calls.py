"""The real openai client through the gateway to the twin: answers, usage settled, streams."""

from __future__ import annotations

import pytest

from gateway.conftest import CANARY, client, cost, sample

MSG = [{"role": "user", "content": "the ledger balances"}]


def test_non_streaming_answer_is_settled_from_usage(make_gateway, twin):
    gw = make_gateway()
    grant = gw.grant(1, 7, "hk7")
    gw.begin_task(1, 7, 0)
    reply = client(gw, grant.token).chat.completions.create(model="twin/echo", messages=MSG)
    assert reply.choices[0].message.content == "echo: the ledger balances"
    expected = cost("twin/echo", reply.usage.prompt_tokens, reply.usage.completion_tokens)
    assert gw.end_task(1, 7, 0) == pytest.approx(expected)
    assert gw.spent(1, 7) == pytest.approx(expected)
    assert sample(gw, "subnet_llm_usd_total", {"miner": "7", "model": "twin/echo"}) == pytest.approx(expected)
    assert sample(gw, "subnet_llm_tokens_total", {"miner": "7", "model": "twin/echo", "kind": "completion"}) == \
        reply.usage.completion_tokens
    assert sample(gw, "subnet_llm_upstream_seconds_count", {}) == 1


def test_upstream_sees_the_validators_key_and_the_public_model_mapped(make_gateway, twin):
    gw = make_gateway(llm_models="public-echo=twin/echo")
    grant = gw.grant(1, 7, "hk7")
    gw.begin_task(1, 7, 0)
    reply = client(gw, grant.token).chat.completions.create(model="public-echo", messages=MSG, max_tokens=50)
    assert reply.choices[0].message.content.startswith("echo:")
    headers, body = twin.requests[-1]
    assert headers["authorization"] == f"Bearer {CANARY}"
    assert grant.token not in repr(headers) and grant.token not in repr(body)
    assert body["model"] == "twin/echo" and body["max_tokens"] == 50


def test_stream_without_usage_requested_hides_the_usage_chunk_but_is_settled(make_gateway, twin):
    gw = make_gateway()
    grant = gw.grant(2, 3, "hk3")
    gw.begin_task(2, 3, 5)
    chunks = list(client(gw, grant.token).chat.completions.create(model="twin/echo", messages=MSG, stream=True))
    assert all(c.choices for c in chunks), "a chunk with choices=[] would break `chunk.choices[0]` code"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "echo: the ledger balances"
    forwarded = twin.requests[-1][1]
    assert forwarded["stream_options"] == {"include_usage": True}
    # The same call asking for usage shows what the first one was charged.
    gw.begin_task(2, 3, 6)
    chunks = list(client(gw, grant.token).chat.completions.create(
        model="twin/echo", messages=MSG, stream=True, stream_options={"include_usage": True}))
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    expected = cost("twin/echo", usage.prompt_tokens, usage.completion_tokens)
    assert gw.end_task(2, 3, 6) == pytest.approx(expected)
    assert gw.end_task(2, 3, 5) == pytest.approx(expected)
    assert gw.spent(2, 3) == pytest.approx(2 * expected)


def test_models_lists_only_the_allowlisted_public_names(make_gateway, twin):
    gw = make_gateway(llm_models="echo=twin/echo")
    grant = gw.grant(1, 1, "hk")
    assert [m.id for m in client(gw, grant.token).models.list()] == ["echo"]
