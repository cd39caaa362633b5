"""Our own request pace stays under Basilica's per-client limit."""

from __future__ import annotations

import threading
import time

import basilica
import pytest

from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.pacer import NORMAL, POLL, URGENT, Pacer
from subnet.compute.settings import load_settings
from subnet.twins.basilica_twin import BasilicaTwin


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def wait(self, _condition, seconds) -> None:
        self.now += seconds or 0.0


def test_a_burst_then_the_rate():
    clock = Clock()
    pacer = Pacer(60, burst=3, clock=clock, wait=clock.wait)
    waits = [pacer.acquire() for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]  # the burst goes at once
    assert clock.now == pytest.approx(3.0)  # then one a second: 60 a minute
    assert Pacer(0).acquire() == 0.0  # unpaced


def test_deletes_go_before_queued_creates_and_polls_wait_for_an_empty_queue():
    """A deployment waiting for its DELETE is paid; one not yet created is not (issue 14)."""
    pacer = Pacer(120, burst=1)  # a token every 0.5 s: slow enough for a loaded machine
    pacer.acquire()  # the burst is spent: everyone below queues
    order: list[str] = []

    def take(name: str, priority: int) -> None:
        pacer.acquire(priority)
        order.append(name)

    creates = [threading.Thread(target=take, args=(f"create{i}", NORMAL)) for i in range(4)]
    for t in creates:
        t.start()
        time.sleep(0.01)  # queued in this order
    assert pacer.try_acquire() is False  # a poll never takes a queued request's token
    deleting = threading.Thread(target=take, args=("delete", URGENT))
    polling = threading.Thread(target=take, args=("poll", POLL))
    polling.start()
    deleting.start()
    for t in [*creates, deleting, polling]:
        t.join(5)
    assert order.index("delete") <= 1 and order.index("delete") < order.index("poll") < order.index("create3")
    assert order.index("poll") <= 2  # ahead of the creates still waiting


def test_a_paced_client_never_meets_the_twins_rate_limit(clean_env):
    with BasilicaTwin(token="t", rate_limit=(5, 1.0)) as twin:
        # burst + rate × window ≤ the limit: 1 + 200/60 < 5 in any second
        settings = load_settings(api_key="t", api_url=twin.url, requests_per_minute=200, request_burst=1,
                                 retries=1)
        client = BasilicaGPUClient(settings)
        for _ in range(12):
            client.balance()
        assert len(twin.requests("GET", "/billing/balance")) == 12
    unpaced = BasilicaTwin(token="t", rate_limit=(5, 1.0))
    with unpaced:
        sdk = basilica.BasilicaClient(base_url=unpaced.url, api_key="t")
        with pytest.raises(RuntimeError, match="Rate limit exceeded"):  # the same calls, unpaced
            for _ in range(12):
                sdk.get_balance()
