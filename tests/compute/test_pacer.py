"""Our own request pace stays under Basilica's per-client limit."""

from __future__ import annotations

import basilica
import pytest

from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.pacer import Pacer
from subnet.compute.settings import load_settings
from subnet.twins.basilica_twin import BasilicaTwin


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_burst_then_the_rate():
    clock = Clock()
    pacer = Pacer(60, burst=3, clock=clock, sleep=clock.sleep)
    waits = [pacer.acquire() for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]  # the burst goes at once
    assert clock.now == pytest.approx(3.0)  # then one a second: 60 a minute
    assert Pacer(0).acquire() == 0.0  # unpaced


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
