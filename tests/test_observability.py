"""/metrics, /health and /leaderboard on loopback while a round runs; JSON-lines logs."""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from subnet.util import aio
from subnet.chain.devchain import DevChain
from subnet.config import Settings
from subnet.validator.observability import JsonFormatter, Metrics, MetricsServer, Observability
from subnet.twins.standin import EchoChallenge, StandInRuntime
from subnet.state.store import Store
from subnet.validator.service import Validator, plan_round


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class ScrapingRuntime(StandInRuntime):
    """Scrapes the endpoint from inside the first Actor call: i.e. while the round runs."""

    def __init__(self, url: str) -> None:
        super().__init__(latency_s=0.001)
        self.url = url
        self.during: str | None = None

    def open(self, submission):
        runtime = self
        inner = super().open(submission)

        class Wrapped:
            async def __aenter__(self):
                session = await inner.__aenter__()
                original = session.call

                async def call(method, kwargs, timeout):
                    if runtime.during is None:
                        runtime.during = ""
                        response = await asyncio.to_thread(httpx.get, runtime.url + "/metrics", timeout=5)
                        runtime.during = response.text
                    return await original(method, kwargs, timeout)

                session.call = call
                return session

            async def __aexit__(self, *exc):
                return await inner.__aexit__(*exc)

        return Wrapped()


def one_miner(tmp_path) -> tuple[DevChain, Store]:
    """A devchain where the validator `v` and the miner `alice` (one image) are registered, and a store."""
    chain = DevChain(tmp_path / "devchain.sqlite", hotkey="v")
    chain.register(1, "v", validator_permit=True)
    chain.register(1, "alice")
    chain.as_hotkey("alice").commit(1, f"ghcr.io/a/env@sha256:{1:064x}".encode())
    return chain, Store(tmp_path / "subnet.sqlite")


def test_metrics_parse_while_a_round_runs_and_the_leaderboard_follows_the_store(tmp_path):
    chain, store = one_miner(tmp_path)
    metrics = Metrics()
    server = MetricsServer(metrics, store.path, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.port}"
    observer = Observability(metrics, server)
    runtime = ScrapingRuntime(url)
    try:
        validator = Validator(chain, observer.wrap(runtime), EchoChallenge(), Settings(home=tmp_path, netuid=1, tasks=3),
                              store, observer=observer)
        report = aio.run(validator.run_round(plan_round(chain.commitments(1), lambda ref: str(ref)), b"s"))

        during = samples(runtime.during)
        assert during[("subnet_round_in_progress", ())] == 1
        assert during[("subnet_active_actors", (("mode", "stand-in"),))] == 1

        after = samples(httpx.get(url + "/metrics").text)
        assert after[("subnet_rounds_total", ())] == 1
        assert after[("subnet_round_in_progress", ())] == 0
        assert after[("subnet_active_actors", (("mode", "stand-in"),))] == 0
        assert after[("subnet_evaluations_total", (("fault", "none"), ("outcome", "verified")))] == 3
        assert after[("subnet_call_latency_seconds_count", ())] == 3
        assert after[("subnet_weights_total", (("status", "set"),))] == 1
        assert after[("subnet_last_successful_round", ())] == report.round_id
        assert all(name.startswith("subnet_") for name, _ in after)

        health = httpx.get(url + "/health").json()
        assert health["status"] == "ok" and health["last_round_at"] > 0
        board = httpx.get(url + "/leaderboard").json()
        assert board["round"] == report.round_id
        assert [(m["hotkey"], m["weight"]) for m in board["miners"]] == [("alice", 1.0)]
        assert httpx.get(url + "/nope").status_code == 404
    finally:
        observer.close()
        store.close()


def test_json_logs_are_one_object_per_line():
    record = logging.LogRecord("subnet.x", logging.WARNING, __file__, 1, "round %d skipped:\nchain", (3,), None)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert json.loads(line) | {"ts": 0} == {"ts": 0, "level": "warning", "logger": "subnet.x",
                                            "message": "round 3 skipped:\nchain"}


def test_spend_is_this_validators_share_of_the_ledger(tmp_path):
    from decimal import Decimal

    from subnet.compute.ledger import Ledger
    from subnet.validator.observability import ledger_spend

    path = tmp_path / "state.sqlite"
    assert ledger_spend(path, "me") == 0.0  # no ledger yet: nothing spent, nothing created
    assert not path.exists()
    with Ledger(path) as ledger:
        ledger.begin("deployment", "mine", owner="me", hourly_rate=Decimal("0.16"))
        ledger.mark_stopped("mine", total_cost=Decimal("0.25"))
        ledger.begin("deployment", "runtime-made", owner="validator:me", hourly_rate=Decimal("0.16"))
        ledger.mark_stopped("runtime-made", total_cost=Decimal("0.5"))  # what the Basilica runtime writes
        ledger.begin("deployment", "theirs", owner="someone-else", hourly_rate=Decimal("0.16"))
        ledger.mark_stopped("theirs", total_cost=Decimal("9"))
    assert ledger_spend(path, "me") == 0.75


def test_slowloris_clients_hold_neither_health_nor_the_round_nor_a_thread_each(tmp_path):
    """100 connections that never finish their request head: /health still answers while they are
    open, a round runs and is reported, no thread is spent per connection, and each one is dropped
    once it has been silent for the request timeout."""
    import socket
    import threading

    chain, store = one_miner(tmp_path)
    metrics = Metrics()
    server = MetricsServer(metrics, store.path, "127.0.0.1", 0, request_timeout=2.0)
    url = f"http://127.0.0.1:{server.port}"
    observer = Observability(metrics, server)
    threads_before = threading.active_count()
    slow = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(100)]
    try:
        for s in slow:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # ... and never the blank line
        assert wait_for(lambda: server.open_connections == 100)
        assert httpx.get(url + "/health", timeout=1).json()["last_round_at"] is None
        validator = Validator(chain, observer.wrap(StandInRuntime(0.001)), EchoChallenge(),
                              Settings(home=tmp_path, netuid=1, tasks=3), store, observer=observer)
        report = aio.run(validator.run_round(plan_round(chain.commitments(1), lambda ref: str(ref)), b"s"))
        assert report.miners[0].verified == 3
        health = httpx.get(url + "/health", timeout=1).json()
        assert health["last_round_at"] is not None and server.open_connections == 100  # all still held
        # (the round's state writes run in short-lived threads of their own: give the last one a moment)
        assert wait_for(lambda: threading.active_count() - threads_before < 5)
        assert wait_for(lambda: server.open_connections == 0, timeout_s=6)  # dropped after 2 s of silence
        for s in slow:
            s.settimeout(1)
            assert s.recv(1) == b""  # closed by the server, nothing sent
    finally:
        for s in slow:
            s.close()
        observer.close()
        store.close()


def test_connections_past_the_limit_are_closed_on_arrival(tmp_path):
    import socket

    server = MetricsServer(Metrics(), tmp_path / "subnet.sqlite", "127.0.0.1", 0, request_timeout=5.0, max_connections=4)
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
    try:
        assert wait_for(lambda: server.open_connections == 4)
        extra = socket.create_connection(("127.0.0.1", server.port))
        extra.settimeout(2)
        extra.sendall(b"GET /health HTTP/1.1\r\n\r\n")
        try:
            assert extra.recv(64) == b""
        except ConnectionResetError:
            pass  # closed with a reset: also refused
        for s in held:
            s.close()
        assert wait_for(lambda: server.open_connections == 0)
        assert httpx.get(f"http://127.0.0.1:{server.port}/health", timeout=2).status_code == 200
    finally:
        server.close()


def wait_for(predicate, timeout_s: float = 3.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_status_metrics_and_doctor_say_when_spend_is_an_estimate(tmp_path, monkeypatch):
    """Basilica reports no price for a deployment: the ledger's figure is list price × time until the
    usage history bills it, and every place that shows spend says which it is."""
    from decimal import Decimal

    from subnet.cli.doctor import check_spend
    from subnet.cli.validator_status import _spend
    from subnet.compute.ledger import Ledger
    from subnet.validator.observability import ledger_spend_split

    path = tmp_path / "state.sqlite"
    with Ledger(path) as ledger:
        ledger.begin("deployment", "estimated", owner="validator:me", hourly_rate=Decimal("3.6"))
        ledger._db.execute("UPDATE ledger_resources SET created_at=created_at-10")  # 10 s at $3.60/h
        ledger.mark_stopped("estimated")
    spent = ledger_spend_split(path, "me")
    assert spent.source == "estimate" and spent.billed == 0 and abs(float(spent.estimated) - 0.01) < 0.001
    assert _spend(spent)["spend_source"] == "estimate" and "estimate" in _spend(spent)["spend"]
    (doctor,) = check_spend(tmp_path)
    assert doctor.name == "basilica-spend" and "estimate: list price × time" in doctor.detail

    with Ledger(path) as ledger:
        ledger.begin("deployment", "billed", owner="validator:me", hourly_rate=Decimal("3.6"))
        ledger.mark_stopped("billed", total_cost=Decimal("0.5"), note="billed: from the usage history")
    spent = ledger_spend_split(path, "me")
    assert spent.source == "partly estimated" and spent.billed == Decimal("0.5")

    metrics = Metrics()
    server = MetricsServer(metrics, tmp_path / "none.sqlite", "127.0.0.1", 0, spend=lambda: spent)
    try:
        scraped = samples(httpx.get(f"http://127.0.0.1:{server.port}/metrics").text)
    finally:
        server.close()
    assert scraped[("subnet_spend_usd", ())] == pytest.approx(float(spent.total))
    assert scraped[("subnet_spend_estimated_usd", ())] == pytest.approx(float(spent.estimated))
