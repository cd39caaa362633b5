"""The Basilica runtime through the real basilica SDK against the twin, whose deployments really run:
each created deployment starts its env under the process runtime, behind a front that answers 401
without that deployment's share token. So a whole round runs: provision → call → verify → price →
delete, and a crash loop, a GPU nobody has, a lost token and a rate limit are real, not mocked."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from subnet.util import aio
from subnet.challenges.matrix_chain import MatrixChain
from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.deployment_client import DeploymentClient
from subnet.compute.ledger import Ledger
from subnet.compute.settings import load_settings
from subnet.compute.start_budget import StartBudget
from subnet.config import Settings
from subnet.protocol import Submission
from subnet.runtime.basilica import BasilicaRuntime
from subnet.runtime.process import ProcessRuntime
from subnet.twins.basilica_deployments import Node
from subnet.twins.basilica_twin import BasilicaTwin, offering
from subnet.twins.deployment_host import ActorHost
from subnet.validator.round import RoundEngine, RoundLimits

from envs_factory import make_broken_env, make_env

TOKEN = "twin-token-for-runtime"
OFFERINGS = [
    offering("a4000-1x", "RTX-A4000", "0.16"),
    offering("v100-spot", "TESLA V100", "0.05", is_spot=True),
    offering("h100", "H100", "2.10"),
]


def digest_of(uid: int) -> str:
    return "sha256:" + f"{uid:02x}" * 32


def image_of(uid: int) -> str:
    return f"docker.io/miner{uid}/env@{digest_of(uid)}"


@pytest.fixture
def envs(tmp_path):
    root = tmp_path / "envs"
    return {1: make_env(root, "honest", "m1"), 2: make_env(root, "honest", "m2"),
            3: make_broken_env(root, "exits_at_import"), 4: make_env(root, "honest", "m4")}


@pytest.fixture
def twin(envs, monkeypatch, tmp_path):
    images = {image_of(uid): str(path) for uid, path in envs.items()}
    host = ActorHost(ProcessRuntime(start_timeout=30), resolve=images.__getitem__)
    with BasilicaTwin(token=TOKEN, offerings=OFFERINGS, actor_host=host) as twin:
        monkeypatch.setenv("BASILICA_API_URL", twin.url)
        monkeypatch.setenv("BASILICA_API_TOKEN", TOKEN)
        monkeypatch.setenv("BASILICA_BACKOFF", "0.01")
        monkeypatch.setenv("BASILICA_REQUESTS_PER_MINUTE", "0")
        monkeypatch.chdir(tmp_path)
        yield twin


SCALE = 15.0  # production seconds per test second: the twin's pulls and the validator's budget alike (the
# twin's own Actor start is real time on a shared machine: 600 s / 15 leaves it 40 s)


def runtime_for(tmp_path, scale: float = SCALE, **settings) -> tuple[BasilicaRuntime, Ledger]:
    """The Basilica runtime on DEFAULT settings (start budget, boot deadline, poll interval), its
    clock `scale` times faster than production."""
    ledger = Ledger(tmp_path / "home" / "state.sqlite")
    client = DeploymentClient(BasilicaGPUClient(load_settings(), ledger=ledger))
    s = Settings(home=tmp_path / "home", **settings)
    budget = StartBudget(s.basilica_start_timeout, s.start_timeout).scaled(scale)
    return BasilicaRuntime(client, s, poll_s=3.0 / scale, budget=budget), ledger


def round_with(runtime, uids=(1, 2), tasks=3, **limits):
    challenge = MatrixChain(n=64, depth=2)
    subs = [Submission(uid, f"hk{uid}", image_of(uid), digest_of(uid)) for uid in uids]
    engine = RoundEngine(runtime, challenge, RoundLimits(**({"call_timeout": 20} | limits)))
    return {o.submission.uid: o for o in aio.run(engine.run(subs, challenge.make_tasks(b"basilica", tasks)))}


def test_a_round_on_the_cheapest_allowed_gpu_with_every_call_carrying_the_token(twin, tmp_path):
    runtime, ledger = runtime_for(tmp_path)
    outcomes = round_with(runtime)
    for outcome in outcomes.values():
        assert all(t.verified for t in outcome.tasks), outcome.tasks
        assert outcome.gpu_type == "TESLA V100" and outcome.hourly_price == pytest.approx(0.05)
    specs = [r["body"] for r in twin.requests("POST", "/deployments")]
    assert len(specs) == 2  # one deployment per image, not one per call
    for spec in specs:
        assert spec["public"] is False and spec["instanceName"].startswith(runtime.prefix)
        assert spec["resources"]["gpus"] == {"count": 1, "model": ["TESLA V100", "V100"], "minGpuMemoryGb": 16,
                                             "spot": True}
        assert TOKEN not in str(spec)  # the validator's API token never reaches a miner
    calls = twin.front_requests()
    assert len([c for c in calls if c.path == "/call"]) == 6 and all(c.token_ok for c in calls)
    assert twin.deployments == {}  # every deployment deleted ...
    assert [e.state for e in ledger.entries("deployment")] == ["stopped", "stopped"]  # ... and the ledger says so
    rows = ledger.entries("deployment")
    assert all(r.remote_id and r.remote_id != r.name for r in rows)  # the server's UUID, not our name
    assert all(r.detail["price_source"].startswith("estimate") for r in rows)


def test_a_challenge_that_needs_no_gpu_gets_a_cpu_only_deployment_at_the_cpu_rate(twin, tmp_path, monkeypatch):
    """prose-ledger/1 declares needs_gpu False: the create carries no `resources.gpus` (SRV types.rs
    `validate_resources` checks GPUs only when present), the same cpu/memory, no GPU listing is read,
    and the price is BASILICA_CPU_HOURLY_RATE, an estimate, with gpu_type "CPU" in the ledger."""
    monkeypatch.setenv("BASILICA_CPU_HOURLY_RATE", "0.07")
    runtime, ledger = runtime_for(tmp_path, challenge="prose-ledger/1")
    outcomes = round_with(runtime, uids=(1,), tasks=2)
    assert all(t.verified for t in outcomes[1].tasks), outcomes[1].tasks
    assert outcomes[1].gpu_type == "CPU" and outcomes[1].hourly_price == pytest.approx(0.07)
    (spec,) = [r["body"] for r in twin.requests("POST", "/deployments")]
    assert spec["resources"] == {"cpu": "2", "memory": "8Gi"} and spec["public"] is False
    assert twin.requests("GET", "/v2/secure-cloud/gpu-prices") == []
    (row,) = ledger.entries("deployment")
    assert row.gpu_type == "CPU" and row.hourly_rate == Decimal("0.07") and row.state == "stopped"
    assert row.detail["price_source"].startswith("estimate") and "BASILICA_CPU_HOURLY_RATE" in row.detail["price_source"]
    runtime.set_needs_gpu(True)  # matrix-chain: the cheapest allowed GPU offering again
    assert aio.run(runtime.cheapest_offering()).gpu_type == "TESLA V100"


def test_the_front_refuses_a_call_without_the_token(twin, tmp_path):
    runtime, _ = runtime_for(tmp_path)
    from subnet.compute.deployments import DeploymentSpec

    spec = DeploymentSpec(name=f"{runtime.prefix}probe", image=image_of(1), gpu_models=["V100"])
    created = runtime.client.create(spec, owner="t", hourly_rate=None)
    url = created.access.base_url
    assert httpx.get(f"{url}/health", timeout=5).status_code == 401
    assert httpx.get(f"{url}/health", params={"token": "guess"}, timeout=5).status_code == 401
    runtime.client.delete(f"{runtime.prefix}probe")


def test_a_crash_looping_image_is_the_miners_fault_with_its_own_error(twin, tmp_path):
    runtime, ledger = runtime_for(tmp_path)
    outcomes = round_with(runtime, uids=(1, 3))
    assert all(t.verified for t in outcomes[1].tasks)
    crashed = outcomes[3]
    assert crashed.faults == {"start_failed": 3}, crashed.tasks
    assert "crashloopbackoff" in crashed.first_reason.lower() or "exit" in crashed.first_reason.lower()
    assert twin.deployments == {} and all(e.state == "stopped" for e in ledger.entries("deployment"))


def test_the_same_round_under_the_operators_state_model(twin, tmp_path):
    """The private server may report the CR state (Pending/Active/Failed) instead of SRV's DB state."""
    twin.state.state_model = "operator"
    runtime, ledger = runtime_for(tmp_path)
    outcomes = round_with(runtime, uids=(1, 3))
    assert all(t.verified for t in outcomes[1].tasks)
    assert outcomes[3].faults == {"start_failed": 3}
    assert twin.deployments == {} and all(e.state == "stopped" for e in ledger.entries("deployment"))


def test_a_gpu_no_node_carries_is_infrastructure_and_is_deleted(twin, tmp_path):
    twin.state.nodes = (Node("H100", 80),)  # the policy's GPUs are labelled nowhere
    runtime, ledger = runtime_for(tmp_path, scale=300)
    (outcome,) = round_with(runtime, uids=(1,)).values()
    assert outcome.counted == [] and outcome.faults == {"infra": 3}
    assert "start budget (no node with the requested GPU" in outcome.first_reason
    assert twin.deployments == {} and [e.state for e in ledger.entries("deployment")] == ["stopped"]


def test_basilica_errors_are_infrastructure_and_leak_nothing(twin, tmp_path):
    runtime, ledger = runtime_for(tmp_path)
    twin.fault("POST /deployments", 400, message="image rejected", times=5)
    (outcome,) = round_with(runtime, uids=(1,)).values()
    assert outcome.counted == [] and outcome.faults == {"infra": 3} and "Basilica" in outcome.first_reason
    assert [e.state for e in ledger.entries("deployment")] == ["failed"] and not twin.deployments


def test_nothing_affordable_is_infrastructure(twin, tmp_path):
    twin.set_offerings([offering("h100", "H100", "2.10")])
    runtime, _ = runtime_for(tmp_path)
    (outcome,) = round_with(runtime, uids=(1,)).values()
    assert outcome.faults == {"infra": 3} and "policy" in outcome.first_reason


def test_a_lost_token_is_regenerated_and_a_call_never_goes_out_without_one(twin, tmp_path, monkeypatch):
    import subnet.twins.basilica_deployments as twin_deployments

    real = twin_deployments.detail_view
    monkeypatch.setattr("subnet.twins.twin_state.detail_view",
                        lambda d, status, with_token=False, **kw: real(d, status, with_token=False, **kw))  # token dropped
    runtime, _ = runtime_for(tmp_path)
    (outcome,) = round_with(runtime, uids=(1,)).values()
    assert all(t.verified for t in outcome.tasks)  # a fresh token was made and used
    assert len(twin.requests("POST")) == 2 and twin.requests("POST")[1]["path"].endswith("/share-token")
    assert all(c.token_ok for c in twin.front_requests())

    twin.fault("POST /deployments/*", 500, times=50)  # and now no token can be had at all
    (outcome,) = round_with(runtime, uids=(2,)).values()
    assert outcome.faults == {"infra": 3} and "no share token" in outcome.first_reason
    assert not [c for c in twin.front_requests() if not c.token_ok]  # nothing was sent without it
    assert twin.deployments == {}


def test_polling_stays_within_a_per_client_rate_limit(twin, tmp_path):
    twin.state.rate_limit = (40, 1.0)
    runtime, ledger = runtime_for(tmp_path)
    runtime.watch.poll_s = 0.01  # eager polling, so the limit is hit and the watch must back off
    outcomes = round_with(runtime, uids=(1, 2, 4))
    assert all(t.verified for o in outcomes.values() for t in o.tasks)
    assert twin.deployments == {} and all(e.state == "stopped" for e in ledger.entries("deployment"))
    # every deployment waited through ONE shared listing per cycle, not a GET each
    reads = twin.requests("GET")
    assert len([r for r in reads if r["path"] == "/deployments"]) >= len(
        [r for r in reads if r["path"].startswith("/deployments/")]) - 3


@pytest.mark.parametrize("limits, expected", [
    ({"max_deployments": 1}, "SUBNET_MAX_DEPLOYMENTS is 1"),
    ({"max_round_spend": 0.0001}, "SUBNET_MAX_ROUND_SPEND"),
    ({"min_balance": 24.999}, "SUBNET_MIN_BALANCE"),
])
def test_the_budget_guard_refuses_a_round_before_anything_is_created(twin, tmp_path, limits, expected):
    runtime, _ = runtime_for(tmp_path, **limits)
    subs = [Submission(uid, f"hk{uid}", image_of(uid), digest_of(uid)) for uid in (1, 2)]
    refusal = aio.run(runtime.preflight(subs))
    assert refusal.startswith("round skipped") and expected in refusal
    assert twin.requests("POST") == []
    assert aio.run(runtime_for(tmp_path / "b")[0].preflight(subs)) is None  # no limits: no refusal


def test_forgotten_deployments_are_reclaimed_by_ledger_and_by_name(twin, tmp_path):
    runtime, ledger = runtime_for(tmp_path)
    from subnet.compute.deployments import DeploymentSpec

    ours = runtime.client.create(DeploymentSpec(name=f"{runtime.prefix}u9-crashed", image=image_of(1), gpu_models=["V100"]),
                                 owner=runtime._owner, hourly_rate=Decimal("0.05"))
    assert ours.info.id in twin.deployments
    assert runtime.reclaim_forgotten() == [f"{runtime.prefix}u9-crashed"]
    assert ledger.get(f"{runtime.prefix}u9-crashed").state == "stopped" and twin.deployments == {}
