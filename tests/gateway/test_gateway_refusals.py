"""Refusals the openai client sees: tokens, rounds, models, tasks, budgets, upstream 429."""

from __future__ import annotations

import openai
import pytest

from gateway.conftest import client, sample

MSG = [{"role": "user", "content": "hello"}]


def test_another_miners_token_is_refused(make_gateway, twin):
    gw = make_gateway()
    mine, theirs = gw.grant(1, 1, "hk1"), gw.grant(1, 2, "hk2")
    gw.begin_task(1, 1, 0)
    gw.begin_task(1, 2, 0)
    prefix, round_id, uid, secret = mine.token.split(".")
    forged = [f"{prefix}.{round_id}.2.{secret}", theirs.token[:-1] + ("0" if theirs.token[-1] != "0" else "1"),
              "sk-anything", ""]
    for token in forged:
        with pytest.raises(openai.AuthenticationError) as caught:
            client(gw, token or "x").chat.completions.create(model="twin/echo", messages=MSG)
        assert caught.value.status_code == 401 and caught.value.code == "bad_token"
    assert len(twin.requests) == 0
    assert gw.spent(1, 2) == 0.0


def test_an_expired_rounds_token_is_refused(make_gateway, twin):
    gw = make_gateway()
    grant = gw.grant(4, 1, "hk1")
    gw.begin_task(4, 1, 0)
    client(gw, grant.token).chat.completions.create(model="twin/echo", messages=MSG)
    spend = gw.close_round(4)
    assert set(spend) == {1} and spend[1] > 0
    with pytest.raises(openai.AuthenticationError) as caught:
        client(gw, grant.token).chat.completions.create(model="twin/echo", messages=MSG)
    assert caught.value.code == "round_closed"
    with pytest.raises(ValueError):
        gw.grant(4, 2, "hk2")
    assert sample(gw, "subnet_llm_refusals_total", {"reason": "round_closed"}) == 1


def test_a_disallowed_model_is_refused(make_gateway, twin):
    gw = make_gateway()
    grant = gw.grant(1, 1, "hk1")
    gw.begin_task(1, 1, 0)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client(gw, grant.token).chat.completions.create(model="twin/unlisted", messages=MSG)
    assert caught.value.status_code == 403 and caught.value.code == "model_not_allowed"
    assert len(twin.requests) == 0 and gw.spent(1, 1) == 0.0


def test_a_call_outside_a_task_is_refused_and_not_retried(make_gateway, twin):
    gw = make_gateway()
    grant = gw.grant(1, 1, "hk1")
    with pytest.raises(openai.APIStatusError) as caught:
        client(gw, grant.token, max_retries=3).chat.completions.create(model="twin/echo", messages=MSG)
    assert caught.value.status_code == 402 and caught.value.code == "no_task"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert sample(gw, "subnet_llm_refusals_total", {"reason": "no_task"}) == 1  # one request: no retry


def test_upstream_429_passes_through_with_retry_after(make_gateway, twin):
    gw = make_gateway()
    grant = gw.grant(1, 1, "hk1")
    gw.begin_task(1, 1, 0)
    twin.rate_limit_next(1, retry_after=7)
    with pytest.raises(openai.RateLimitError) as caught:
        client(gw, grant.token, max_retries=0).chat.completions.create(model="twin/echo", messages=MSG)
    assert caught.value.status_code == 429 and caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limit_exceeded"
    assert gw.end_task(1, 1, 0) == 0.0  # a refusal before any token is not charged
    # The SDK honours the passed-through Retry-After and its retry goes through.
    gw.begin_task(1, 1, 1)
    twin.rate_limit_next(1, retry_after=0.2)
    reply = client(gw, grant.token, max_retries=1).chat.completions.create(model="twin/echo", messages=MSG)
    assert reply.choices[0].message.content == "echo: hello"
    assert gw.end_task(1, 1, 1) > 0


def test_a_bad_request_is_one_clear_line(make_gateway, twin):
    gw = make_gateway()
    grant = gw.grant(1, 1, "hk1")
    gw.begin_task(1, 1, 0)
    with pytest.raises(openai.BadRequestError) as caught:
        client(gw, grant.token).chat.completions.create(model="twin/echo", messages=MSG, n=2)
    assert "n=1" in caught.value.message
    assert len(twin.requests) == 0


def test_an_oversized_body_is_refused_unread(make_gateway, twin):
    gw = make_gateway()
    grant = gw.grant(1, 1, "hk1")
    gw.begin_task(1, 1, 0)
    with pytest.raises(openai.APIStatusError) as caught:
        client(gw, grant.token).chat.completions.create(
            model="twin/echo", messages=[{"role": "user", "content": "x" * (9 << 20)}])
    assert caught.value.status_code == 413 and caught.value.code == "too_large"
    assert len(twin.requests) == 0 and gw.spent(1, 1) == 0.0
