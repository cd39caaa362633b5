"""Budgets: reserved before forwarding, cut mid-stream, cancelled calls charged, kept across a restart.

The bound these tests hold the gateway to: what it charges a task never exceeds the task's budget.
A call reserves prompt-bound x prompt price + max_tokens x completion price, max_tokens being
clamped to what the budget left affords, so an honest upstream's usage always fits; an upstream
that ignores max_tokens is cut after max_tokens + EVENT_SLACK chunks and charged exactly its
reservation. (What a cut upstream bills for tokens generated after the cut, the gateway cannot
see; docs/gateway.md says so.)
"""

from __future__ import annotations

import sqlite3
import threading
import time

import openai
import pytest

from gateway.conftest import client
from subnet.gateway.relay import EVENT_SLACK

MSG = [{"role": "user", "content": "write"}]
TIGHT = dict(llm_task_budget_usd=0.0015, llm_round_budget_usd=0.05)  # ~20 completion tokens of twin/long


def _rows(gw) -> list[tuple]:
    with sqlite3.connect(gw.store.path) as db:
        return db.execute("SELECT state, reserved_usd, usd, completion_tokens FROM llm_calls ORDER BY id").fetchall()


def _wait(predicate, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_max_tokens_is_clamped_to_the_budget_and_then_refused(make_gateway, twin):
    gw = make_gateway(**TIGHT)
    grant = gw.grant(1, 1, "hk1")
    gw.begin_task(1, 1, 0)
    sdk = client(gw, grant.token, max_retries=2)
    chunks = list(sdk.chat.completions.create(model="twin/long", messages=MSG, stream=True, max_tokens=1000))
    forwarded = twin.requests[-1][1]["max_tokens"]
    assert 1 <= forwarded < 1000
    assert chunks[-1].choices[0].finish_reason == "length"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == forwarded
    assert gw.spent(1, 1) <= TIGHT["llm_task_budget_usd"]
    with pytest.raises(openai.APIStatusError) as caught:  # the same call again: its worst case no longer fits
        sdk.chat.completions.create(model="twin/long", messages=MSG, stream=True, max_tokens=1000)
    assert caught.value.status_code == 402 and caught.value.code == "budget"
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert len(twin.requests) == 1  # refused before forwarding, and the SDK did not retry
    assert gw.end_task(1, 1, 0) <= TIGHT["llm_task_budget_usd"]


def test_budget_exhausted_mid_stream_cuts_the_stream(make_gateway, twin):
    twin.ignore_max_tokens = True  # an upstream that would stream all 200 tokens
    twin.token_delay_s = 0.01
    gw = make_gateway(**TIGHT)
    grant = gw.grant(1, 1, "hk1")
    gw.begin_task(1, 1, 0)
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client(gw, grant.token).chat.completions.create(model="twin/long", messages=MSG, stream=True):
            received.append(chunk)
    assert caught.value.code == "budget_exhausted"
    max_tokens = twin.requests[-1][1]["max_tokens"]
    assert max_tokens < len(received) <= max_tokens + EVENT_SLACK < 200
    charged = gw.end_task(1, 1, 0)
    [(state, reserved, usd, _)] = _rows(gw)
    assert state == "settled" and usd == reserved == pytest.approx(charged)
    assert charged <= TIGHT["llm_task_budget_usd"]
    _wait(lambda: twin.cancelled_streams == 1)


def test_client_disconnect_cancels_the_upstream_and_charges_the_reservation(make_gateway, twin):
    twin.token_delay_s = 0.05  # 200 tokens: ten seconds unless cancelled
    gw = make_gateway(llm_task_budget_usd=0.05)
    grant = gw.grant(1, 1, "hk1")
    gw.begin_task(1, 1, 0)
    stream = client(gw, grant.token).chat.completions.create(model="twin/long", messages=MSG, stream=True)
    for _, _chunk in zip(range(3), stream):
        pass
    stream.close()
    _wait(lambda: twin.cancelled_streams == 1, within=5)
    assert twin.completed_streams == 0 and twin.open_streams == 0
    charged = gw.end_task(1, 1, 0)
    [(state, reserved, usd, tokens)] = _rows(gw)
    assert state == "settled" and tokens is None and usd == reserved == pytest.approx(charged)
    assert charged > 0


def test_end_task_cancels_calls_still_running(make_gateway, twin):
    twin.token_delay_s = 0.05
    gw = make_gateway(llm_task_budget_usd=0.05, llm_settle_wait_s=0.3)
    grant = gw.grant(1, 1, "hk1")
    gw.begin_task(1, 1, 0)
    failure: list[BaseException] = []

    def read_all() -> None:
        try:
            list(client(gw, grant.token).chat.completions.create(model="twin/long", messages=MSG, stream=True))
        except openai.APIError as exc:
            failure.append(exc)

    reader = threading.Thread(target=read_all)
    reader.start()
    _wait(lambda: twin.open_streams == 1)
    charged = gw.end_task(1, 1, 0)
    reader.join(10)
    assert [getattr(e, "code", None) for e in failure] == ["task_ended"]
    [(state, reserved, usd, _)] = _rows(gw)
    assert state == "settled" and usd == reserved == pytest.approx(charged)
    _wait(lambda: twin.cancelled_streams == 1)


def test_a_restart_keeps_spent_budgets(make_gateway, twin):
    limits = dict(llm_task_budget_usd=0.0015, llm_round_budget_usd=0.0015)
    first = make_gateway("kept.sqlite", **limits)
    grant = first.grant(9, 1, "hk1")
    first.begin_task(9, 1, 0)
    list(client(first, grant.token).chat.completions.create(model="twin/long", messages=MSG, stream=True))
    spent = first.end_task(9, 1, 0)
    assert spent > 0
    import asyncio
    asyncio.run(first.stop())

    second = make_gateway("kept.sqlite", **limits)
    assert second.spent(9, 1) == pytest.approx(spent)
    grant = second.grant(9, 1, "hk1")
    second.begin_task(9, 1, 1)  # a fresh task, but the round's budget is what is left
    with pytest.raises(openai.APIStatusError) as caught:
        client(second, grant.token).chat.completions.create(model="twin/long", messages=MSG)
    assert caught.value.status_code == 402 and "round budget" in caught.value.message
    assert second.close_round(9) == {1: pytest.approx(spent)}


def test_a_non_streaming_client_leaving_cancels_the_upstream(make_gateway, twin):
    twin.token_delay_s = 0.05  # the answer takes ten seconds
    gw = make_gateway(llm_task_budget_usd=0.05)
    grant = gw.grant(1, 1, "hk1")
    gw.begin_task(1, 1, 0)
    with pytest.raises(openai.APITimeoutError):
        client(gw, grant.token, timeout=0.5, max_retries=0).chat.completions.create(model="twin/long", messages=MSG)
    _wait(lambda: twin.cancelled_calls == 1, within=5)
    charged = gw.end_task(1, 1, 0)
    [(state, reserved, usd, tokens)] = _rows(gw)
    assert state == "settled" and tokens is None and usd == reserved == pytest.approx(charged)


def test_client_leaving_a_silent_stream_cancels_the_upstream(make_gateway, twin):
    # The upstream sends its first chunk and then nothing for 30 s: the gateway must learn of the
    # client leaving from the connection (its disconnect watcher), not from the next chunk's write.
    twin.token_delay_s = 30.0
    gw = make_gateway(llm_task_budget_usd=0.05)
    grant = gw.grant(1, 1, "hk1")
    gw.begin_task(1, 1, 0)
    stream = client(gw, grant.token).chat.completions.create(model="twin/long", messages=MSG, stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.role == "assistant"
    stream.close()
    _wait(lambda: twin.cancelled_streams == 1, within=5)
    assert twin.completed_streams == 0 and twin.open_streams == 0
    assert gw.end_task(1, 1, 0) > 0  # charged its reservation: the upstream may have generated tokens
