"""Basilica at production conditions, through the real SDK against the twin, time-scaled: pulls of
minutes, evictions and spot reclaims, a server that lists no names, a killed validator. On DEFAULT
settings a round pays the honest miner, blames no miner for what Basilica did, and leaves nothing."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.deployment_client import DeploymentClient
from subnet.compute.deployments import DeploymentSpec, friendly_name, ledger_owner
from subnet.compute.ledger import Ledger
from subnet.compute.settings import load_settings
from subnet.config import Settings
from subnet.state.identity import validator_identity
from subnet.twins.basilica_deployments import Generation
from subnet.twins.basilica_profile import Disruption, Fate

from envs_factory import make_broken_env, make_env
from test_basilica_runtime import SCALE, digest_of, image_of, round_with, runtime_for, twin  # noqa: F401  (fixtures)


@pytest.fixture
def envs(tmp_path):  # overrides test_basilica_runtime's: slow calls, so a disruption lands mid-round
    root = tmp_path / "envs"
    return {1: make_env(root, "honest", "m1"), 2: make_env(root, "slow", "m2"), 3: make_broken_env(root, "import_error"),
            4: make_env(root, "honest", "m4")}


def fate(twin, runtime, uid: int, **kw) -> None:
    twin.state.fates[f"{runtime.prefix}u{uid}-"] = Fate(**kw)


def no_miner_blamed(outcome) -> bool:
    return all(t.verified or t.infra for t in outcome.tasks)


@pytest.mark.parametrize("generation", ["today", "srv"])
def test_pulls_of_90s_on_default_settings_pay_the_honest_miner(twin, tmp_path, generation):
    twin.state.generation = Generation.named(generation)
    runtime, ledger = runtime_for(tmp_path)
    for uid in (1, 4):
        fate(twin, runtime, uid, schedule_s=5 / SCALE, pull_s=90 / SCALE)  # a 1 GB image on a fresh node
    started = time.monotonic()
    outcomes = round_with(runtime, uids=(1, 4))
    assert time.monotonic() - started >= 95 / SCALE  # the pulls really took their (scaled) minute and a half
    assert all(t.verified for o in outcomes.values() for t in o.tasks), [o.tasks for o in outcomes.values()]
    assert all(c.token_ok for c in twin.front_requests())  # private: every call carried its token
    assert twin.deployments == {} and not ledger.live()
    assert all(int(r["query"].get("limit", 0)) <= 100 for r in twin.requests("GET", "/billing/usage"))


def test_the_same_pulls_under_the_old_60s_deadline_paid_nobody(twin, tmp_path):
    """What issue 14 found: Docker's 60 s start deadline on Basilica made every miner infra."""
    runtime, _ = runtime_for(tmp_path, basilica_start_timeout=60)
    fate(twin, runtime, 1, schedule_s=5 / SCALE, pull_s=90 / SCALE)
    (outcome,) = round_with(runtime, uids=(1,)).values()
    assert outcome.faults == {"infra": 3} and "start budget" in outcome.first_reason


@pytest.mark.parametrize("generation", ["today", "srv"])
def test_an_eviction_right_after_ready_is_infrastructure(twin, tmp_path, generation):
    twin.state.generation = Generation.named(generation)
    runtime, ledger = runtime_for(tmp_path)
    fate(twin, runtime, 1, pull_s=30 / SCALE, disruption=Disruption("evicted", 0.0))
    outcomes = round_with(runtime, uids=(1, 4))
    evicted = outcomes[1]
    assert evicted.counted == [] and evicted.faults == {"infra": 3}, evicted.tasks
    assert "Evicted" in evicted.first_reason or "without a container crash" in evicted.first_reason
    assert all(t.verified for t in outcomes[4].tasks)
    assert twin.deployments == {} and not ledger.live()


@pytest.mark.parametrize("kind", ["evicted", "spot_reclaim", "preempted"])
@pytest.mark.parametrize("generation", ["today", "srv"])
def test_a_deployment_that_dies_mid_calls_is_infrastructure_for_the_rest_of_its_tasks(twin, tmp_path, kind, generation):
    twin.state.generation = Generation.named(generation)
    runtime, ledger = runtime_for(tmp_path)
    fate(twin, runtime, 2, pull_s=30 / SCALE, disruption=Disruption(kind, 1.5))  # a few 0.6 s calls in
    outcomes = round_with(runtime, uids=(2,), tasks=8, per_miner=1)
    (outcome,) = outcomes.values()
    assert no_miner_blamed(outcome), outcome.tasks
    assert 1 <= sum(t.verified for t in outcome.tasks) < 8 and outcome.faults.get("infra", 0) >= 1
    assert "mid-round" in next(t.reason for t in outcome.tasks if t.infra)
    assert twin.deployments == {} and not ledger.live()


@pytest.mark.parametrize("generation", ["today", "srv"])
def test_a_crash_at_import_is_the_miners_start_failed_with_the_envs_own_line(twin, tmp_path, generation):
    twin.state.generation = Generation.named(generation)  # srv: no container states, only events and logs
    runtime, ledger = runtime_for(tmp_path)
    fate(twin, runtime, 3, pull_s=60 / SCALE)
    (outcome,) = round_with(runtime, uids=(3,)).values()
    assert outcome.faults == {"start_failed": 3}, outcome.tasks
    assert "not_a_real_module_xyz" in outcome.first_reason  # the container's last log line
    assert twin.deployments == {} and not ledger.live()


def test_a_lost_create_answer_on_a_server_without_names_still_pays_for_one_deployment(twin, tmp_path):
    twin.state.generation = Generation.named("srv")
    runtime, ledger = runtime_for(tmp_path)
    twin.fault("POST /deployments", 504, after=True)
    (outcome,) = round_with(runtime, uids=(1,)).values()
    assert all(t.verified for t in outcome.tasks), outcome.tasks
    creates = twin.requests("POST", "/deployments")
    assert len(creates) == 2 and creates[0]["body"]["instanceName"] == creates[1]["body"]["instanceName"]
    assert len({r["path"] for r in twin.requests("DELETE")}) == 1  # one deployment existed, one was deleted
    assert twin.deployments == {} and not ledger.live()


def _create_then_hang(url: str, token: str, home: str, count: int) -> None:
    """A validator's creates (the last one's answer comes late), then nothing: killed mid-pull."""
    ledger = Ledger(os.path.join(home, "state.sqlite"))
    client = DeploymentClient(BasilicaGPUClient(load_settings(api_key=token, api_url=url, requests_per_minute=0),
                                                ledger=ledger))
    identity = validator_identity(Settings(home=home).home)
    for uid in range(count):
        spec = DeploymentSpec(name=friendly_name(identity, uid, digest_of(uid)), image=image_of(1), gpu_models=["V100"])
        client.create(spec, owner=ledger_owner(identity), hourly_rate=None)
    time.sleep(3600)


def test_names_absent_sigkill_while_deployments_pull_and_a_restart_deletes_them_all(twin, tmp_path, monkeypatch):
    twin.state.generation = Generation.named("srv")
    twin.state.fates[""] = Fate(pull_s=3600)  # every deployment is still pulling when the kill comes
    home = tmp_path / "home"
    other = DeploymentClient(BasilicaGPUClient(load_settings(), ledger=Ledger(tmp_path / "other.sqlite")))
    theirs = other.create(DeploymentSpec(name="someone-elses", image=image_of(1), gpu_models=["V100"]),
                          owner="x", hourly_rate=None)  # nameless in the listing, and not ours
    twin.fault("POST /deployments", None, times=2)  # the first two creates answer at once ...
    twin.fault("POST /deployments", None, after=True, delay=30)  # ... the third is made, its answer comes late
    child = multiprocessing.get_context("spawn").Process(  # a fork would copy this threaded process's held locks
        target=_create_then_hang, args=(twin.url, twin.state.token, str(home), 3), daemon=True)
    child.start()
    deadline = time.monotonic() + 60
    while len(twin.deployments) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)  # the third create's answer never arrived: its row has no UUID
    child.join(10)
    left = set(twin.deployments) - {theirs.info.id}
    assert len(left) == 3
    rows = Ledger(home / "state.sqlite").live("deployment")
    assert sorted(bool(r.remote_id) for r in rows) == [False, True, True]

    runtime, ledger = runtime_for(tmp_path)
    assert len(runtime.reclaim_forgotten()) == 3
    assert set(twin.deployments) == {theirs.info.id}  # all ours deleted, nobody else's touched
    assert not ledger.live("deployment")


def test_the_budget_guard_counts_the_start_budget(twin, tmp_path):
    """At default settings a deployment may live 600 + 60 + 120 s of start, then its calls."""
    import asyncio

    from subnet.compute.basilica import BasilicaGPUClient
    from subnet.protocol import Submission
    from subnet.runtime.basilica import BasilicaRuntime

    ledger = Ledger(tmp_path / "state.sqlite")
    runtime = BasilicaRuntime(DeploymentClient(BasilicaGPUClient(load_settings(), ledger=ledger)),
                              Settings(home=tmp_path / "home", max_round_spend=0.0001))
    subs = [Submission(uid, f"hk{uid}", image_of(uid), digest_of(uid)) for uid in (1, 2)]
    refusal = asyncio.run(runtime.preflight(subs))
    # 2 deployments × $0.05/h × (780 s of start + 2 × 30 s of calls) = 14.0 min each
    assert "2 × $0.05/h × 14.0 min" in refusal and twin.requests("POST") == []
