"""The upstream's side: bounded concurrency, an unreachable upstream, a silent one."""

from __future__ import annotations

import socket
import threading

import openai
import pytest

from gateway.conftest import client

MSG = [{"role": "user", "content": "go"}]


def test_concurrency_is_bounded(make_gateway, twin):
    twin.token_delay_s = 0.01
    gw = make_gateway(llm_concurrency=2, llm_task_budget_usd=1.0, llm_round_budget_usd=1.0)
    grant = gw.grant(1, 1, "hk1")
    gw.begin_task(1, 1, 0)
    answers: list[str] = []

    def one() -> None:
        chunks = client(gw, grant.token).chat.completions.create(model="twin/long", messages=MSG, stream=True)
        answers.append("".join(c.choices[0].delta.content or "" for c in chunks if c.choices))

    threads = [threading.Thread(target=one) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 5 and all(a.endswith("w199") for a in answers)  # all served, in turn
    assert twin.most_open_streams == 2


def test_an_unreachable_upstream_is_a_502_and_not_charged(make_gateway, twin):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Configured prices: the dead upstream's /v1/models is not needed to start.
    dead = make_gateway("dead.sqlite", llm_upstream=f"http://127.0.0.1:{port}/v1",
                        llm_prices="twin/echo=0.1/0.4,twin/long=2/50")
    grant = dead.grant(1, 1, "hk1")
    dead.begin_task(1, 1, 0)
    with pytest.raises(openai.InternalServerError) as caught:
        client(dead, grant.token, max_retries=0).chat.completions.create(model="twin/echo", messages=MSG)
    assert caught.value.status_code == 502 and caught.value.code == "upstream_error"
    assert dead.end_task(1, 1, 0) == 0.0


def test_a_silent_upstream_times_out_and_is_charged_its_reservation(make_gateway, twin):
    twin.token_delay_s = 0.5  # 200 tokens: far past the read timeout
    gw = make_gateway(llm_read_timeout_s=0.3, llm_task_budget_usd=1.0)
    grant = gw.grant(1, 1, "hk1")
    gw.begin_task(1, 1, 0)
    with pytest.raises(openai.APIStatusError) as caught:
        client(gw, grant.token, max_retries=0).chat.completions.create(model="twin/long", messages=MSG)
    assert caught.value.status_code == 504
    charged = gw.end_task(1, 1, 0)
    assert charged > 0  # nothing proves the upstream generated nothing
