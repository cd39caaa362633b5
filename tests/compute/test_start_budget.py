"""The Basilica start budget and the bounds built on it. Pure."""

from __future__ import annotations

import pytest

from subnet.compute.start_budget import (
    DEFAULT_START_BUDGET_S,
    StartBudget,
    StartClock,
    calls_bound_s,
    life_bound_s,
    ttl_s,
)
from subnet.config import Settings


def test_the_default_is_pull_plus_scheduling_plus_route_and_the_setting_agrees():
    assert DEFAULT_START_BUDGET_S == 300 + 180 + 120 == 600
    assert Settings().basilica_start_timeout == DEFAULT_START_BUDGET_S  # config cannot import compute: kept equal here
    assert Settings().start_timeout == StartBudget().boot_s == 60  # the miner's own allowance is Docker's


def test_the_miners_clock_starts_when_its_container_runs_and_keeps_its_whole_allowance():
    clock = StartClock(StartBudget(total_s=600, boot_s=60, route_s=120), created_at=1000.0)
    clock.observe("starting", ["waiting"], now=1300.0)  # a healthy pull shows phase "starting"
    assert clock.running_for(1300.0) is None and clock.deadline("starting") == 1600.0
    clock.observe("health_check", [], now=1590.0)  # running, late: it still gets its 60 s
    assert clock.running_for(1600.0) == 10.0 and clock.deadline("health_check") == 1650.0
    assert clock.deadline("ready") == 1770.0  # Kubernetes says ready: the route gets its time too
    clock.observe("ready", ["running"], now=1620.0)
    assert clock.running_since == 1590.0  # the first sighting counts


def test_bounds_on_a_deployments_life_and_its_ttl():
    assert calls_bound_s(miners=2, tasks=8, per_miner=4, concurrency=8, call_timeout=30) == 60  # per-miner bound
    assert calls_bound_s(miners=64, tasks=8, per_miner=4, concurrency=8, call_timeout=30) == 64 * 30  # the round's
    longest = StartBudget().longest_s
    assert longest == 780 and life_bound_s(longest, 60) == 840
    assert ttl_s(longest, 60) == 840 + 600


def test_a_scaled_budget_is_the_same_budget_faster():
    assert StartBudget().scaled(30) == StartBudget(20, 2, 4, 1)
    with pytest.raises(ZeroDivisionError):
        StartBudget().scaled(0)
