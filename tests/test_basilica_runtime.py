"""The Basilica runtime, driven through the real basilica SDK against the local Basilica twin.

The twin's deployments point at a real Actor server (the reference env under affinetes' own
server), so a whole round runs: provision → call → verify → price → delete.
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from subnet import aio
from subnet.challenges.matrix_chain import MatrixChain
from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.ledger import Ledger
from subnet.compute.settings import load_settings
from subnet.config import Settings
from subnet.protocol import Submission
from subnet.runtime.basilica import BasilicaRuntime
from subnet.runtime.process import free_port
from subnet.twins.basilica_twin import BasilicaTwin, offering
from subnet.validator.round import RoundEngine, RoundLimits

ENVS = __import__("pathlib").Path(__file__).resolve().parent.parent / "envs"

TOKEN = "twin-token-for-runtime"
OFFERINGS = [
    offering("a4000-1x", "RTX-A4000", "0.16"),
    offering("v100-spot", "TESLA V100", "0.05", is_spot=True),
    offering("h100", "H100", "2.10"),
]
DIGEST = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def actor_url():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "subnet.runtime.actor_host", "--env", str(ENVS / "matrix-chain-numpy"), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def twin(actor_url, monkeypatch, tmp_path):
    with BasilicaTwin(token=TOKEN, offerings=OFFERINGS, deployment_url=actor_url) as twin:
        monkeypatch.setenv("BASILICA_API_URL", twin.url)
        monkeypatch.setenv("BASILICA_API_TOKEN", TOKEN)
        monkeypatch.setenv("BASILICA_BACKOFF", "0.01")
        monkeypatch.chdir(tmp_path)
        yield twin


def runtime_for(tmp_path, start_timeout: float = 20.0) -> tuple[BasilicaRuntime, Ledger]:
    ledger = Ledger(tmp_path / "state.sqlite")
    client = BasilicaGPUClient(load_settings(), ledger=ledger)
    settings = Settings(home=tmp_path, start_timeout=start_timeout)
    return BasilicaRuntime(client, settings, poll_s=0.05), ledger


def round_with(runtime, uids=(1, 2), tasks=3):
    challenge = MatrixChain(n=64, depth=2)
    subs = [Submission(uid, f"hk{uid}", f"docker.io/miner{uid}/env@{DIGEST}", DIGEST) for uid in uids]
    engine = RoundEngine(runtime, challenge, RoundLimits(call_timeout=20))
    return aio.run(engine.run(subs, challenge.make_tasks(b"basilica", tasks)))


def test_a_round_on_the_cheapest_allowed_gpu(twin, tmp_path):
    runtime, ledger = runtime_for(tmp_path)
    outcomes = round_with(runtime)
    for outcome in outcomes:
        assert all(t.verified for t in outcome.tasks), outcome.tasks
        assert outcome.gpu_type == "TESLA V100" and outcome.hourly_price == pytest.approx(0.05)
    specs = [r["body"] for r in twin.requests("POST", "/deployments")]
    assert len(specs) == 2
    for spec in specs:
        assert spec["public"] is False  # never callable by strangers
        assert spec["image"].endswith("@" + DIGEST)
        assert spec["resources"]["gpus"]["count"] == 1
        assert spec["resources"]["gpus"]["model"] == ["TESLA V100"]
        assert spec["resources"]["gpus"]["spot"] is True
        assert TOKEN not in str(spec)  # the validator's API token never reaches a miner
    # every deployment deleted, and the ledger says so
    assert twin.deployments == {}
    assert len([r for r in twin.requests("DELETE") if r["path"].startswith("/deployments/")]) == 2
    assert [e.state for e in ledger.entries("deployment")] == ["stopped", "stopped"]


def test_basilica_errors_are_infrastructure_and_leak_nothing(twin, tmp_path):
    runtime, ledger = runtime_for(tmp_path)
    twin.fault("POST /deployments", 503, times=50)
    (outcome,) = round_with(runtime, uids=(1,))
    assert outcome.counted == [] and outcome.faults == {"infra": 3}
    assert "Basilica" in outcome.first_reason
    assert [e.state for e in ledger.entries("deployment")] == ["failed"]
    assert not twin.deployments


def test_nothing_affordable_is_infrastructure(twin, tmp_path):
    twin.set_offerings([offering("h100", "H100", "2.10")])
    runtime, _ = runtime_for(tmp_path)
    (outcome,) = round_with(runtime, uids=(1,))
    assert outcome.faults == {"infra": 3} and "policy" in outcome.first_reason


def test_a_deployment_never_scheduled_is_infrastructure_and_is_deleted(twin, tmp_path):
    twin.state.ready_after_polls = 10_000
    runtime, ledger = runtime_for(tmp_path, start_timeout=0.5)
    (outcome,) = round_with(runtime, uids=(1,))
    assert outcome.faults == {"infra": 3} and "not scheduled" in outcome.first_reason
    assert [e.state for e in ledger.entries("deployment")] == ["stopped"]


def test_forgotten_deployments_are_reclaimed_at_start(twin, tmp_path):
    runtime, ledger = runtime_for(tmp_path)
    from subnet.compute.deployments import DeploymentSpec

    offer = runtime.client.list_cheap_gpus()[0]
    spec = DeploymentSpec.for_offering(offer, name="sn-u9-crashed-abc", image=f"x/y@{DIGEST}")
    runtime.client.create_deployment(spec, owner="validator", hourly_rate=offer.box_hourly_rate)
    assert "sn-u9-crashed-abc" in twin.deployments
    assert runtime.reclaim_forgotten() == ["sn-u9-crashed-abc"]
    assert ledger.get("sn-u9-crashed-abc").state == "stopped"
