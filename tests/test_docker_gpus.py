"""GPUs in Docker mode: found through the daemon, priced by the policy, one per Actor at a time.

The end-to-end tests drive the real Docker runtime (docker SDK + affinetes) against a twin of the
Docker Engine API (tests/docker_api_twin.py): no GPU exists here, so what is checked is the
request the daemon receives and what the container would see.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from subnet.util import aio
from subnet.chain.devchain import DevChain
from subnet.compute.policy import GpuPolicy, parse_allowlist
from subnet.config import Settings
from subnet.runtime.docker import DockerRuntime
from subnet.runtime.docker_gpus import GpuPool, GpuUnavailable, LocalGpu, discover, gpu_type, parse_nvidia_smi, policy_price
from subnet.runtime.docker_settings import DockerSettings
from subnet.twins.standin import EchoChallenge
from subnet.state.store import Store
from subnet.validator.service import Validator, plan_round

from docker_api_twin import DockerTwin

IMAGES = ["sha256:" + f"{i:x}" * 64 for i in range(10, 16)]
SMI = "0, GPU-11111111-2222-3333-4444-555555555555, NVIDIA RTX A4000, 16376\n" \
      "1, GPU-66666666-7777-8888-9999-000000000000, NVIDIA RTX A4000, 16376\n"
NVIDIA = {"Runtimes": {"runc": {}, "nvidia": {"path": "nvidia-container-runtime"}}}
POLICY = GpuPolicy.default()


# -- finding and pricing ----------------------------------------------------------------------
def test_nvidia_smi_rows_become_gpus_named_as_basilica_names_them():
    rows = parse_nvidia_smi(SMI + "garbage line\n")
    assert [(r.index, r.name, round(r.memory_gib, 1)) for r in rows] == [("0", "NVIDIA RTX A4000", 16.0),
                                                                          ("1", "NVIDIA RTX A4000", 16.0)]
    assert gpu_type("NVIDIA RTX A4000") == "RTX A4000"
    assert gpu_type("Tesla V100-SXM2-16GB") == "TESLA V100-SXM2-16GB"


@pytest.mark.parametrize("kind, local, expected", [
    ("RTX A4000", None, 0.16),  # "RTX-A4000" in the allowlist matches on letters and digits
    ("TESLA V100-SXM2-16GB", None, 0.15),  # an owned GPU is priced as on-demand, not spot
    ("RTX A6000", None, 0.44),
    ("RTX A4000", 0.5, 0.5),  # SUBNET_LOCAL_GPU_PRICE wins
])
def test_an_allowed_gpu_is_priced_by_the_policy_table_or_the_local_price(kind, local, expected):
    assert policy_price(kind, 1, POLICY, local) == (expected, "")


def test_a_gpu_outside_the_policy_is_refused_and_one_without_a_typical_price_needs_a_local_price():
    price, why = policy_price("H200 NVL", 1, POLICY, None)
    assert price is None and "H200 NVL x1 is not in BASILICA_ALLOWED_GPU_TYPES" in why
    policy = GpuPolicy(parse_allowlist("H200:ondemand:1"))
    price, why = policy_price("H200 NVL", 1, policy, None)
    assert price is None and "set SUBNET_LOCAL_GPU_PRICE" in why
    assert policy_price("H200 NVL", 1, policy, 2.5) == (2.5, "")


def test_auto_uses_gpus_only_when_the_daemon_has_the_nvidia_runtime():
    smi = lambda: SMI  # noqa: E731
    assert discover({"Runtimes": {"runc": {}}}, "auto", "", None, lambda: POLICY, smi) == []
    gpus = discover(NVIDIA, "auto", "", None, lambda: POLICY, smi)
    assert gpus == [LocalGpu("0", "RTX A4000", 0.16, pytest.approx(16.0, abs=0.1)),
                    LocalGpu("1", "RTX A4000", 0.16, pytest.approx(16.0, abs=0.1))]
    assert discover(NVIDIA, "none", "", None, lambda: POLICY, smi) == []


def test_gpus_that_cannot_be_named_or_are_refused_say_what_to_set_in_one_line():
    with pytest.raises(GpuUnavailable) as no_smi:
        discover(NVIDIA, "auto", "", None, lambda: POLICY, lambda: None)
    assert "SUBNET_DOCKER_GPUS=0,1" in str(no_smi.value) and "SUBNET_DOCKER_GPU_TYPE" in str(no_smi.value)
    with pytest.raises(GpuUnavailable) as refused:
        discover(NVIDIA, "auto", "", None, lambda: POLICY, lambda: "0, GPU-1, NVIDIA H200, 143771\n")
    assert "H200 x1 is not in BASILICA_ALLOWED_GPU_TYPES" in str(refused.value)
    assert "SUBNET_DOCKER_GPUS=none" in str(refused.value) and "\n" not in str(refused.value)
    # Named explicitly, with the type given (a validator in a container has no nvidia-smi):
    assert discover({}, "1", "RTX A4000", None, lambda: POLICY, lambda: None) == [LocalGpu("1", "RTX A4000", 0.16)]


def test_the_pool_gives_each_actor_its_own_gpu_and_makes_the_next_one_wait():
    pool = GpuPool([LocalGpu("0", "X", 1.0), LocalGpu("1", "X", 1.0)])
    seen: list[dict[str, int]] = []
    order: list[str] = []

    async def actor(name: str, hold: float) -> None:
        async with pool.lease() as gpu:
            order.append(f"{name}:{gpu.device_id}")
            seen.append(pool.in_use())
            await asyncio.sleep(hold)

    async def main() -> None:
        await asyncio.gather(actor("a", 0.05), actor("b", 0.2), actor("c", 0.01))

    asyncio.run(main())
    assert all(max(use.values()) <= 1 for use in seen)
    assert order[:2] == ["a:0", "b:1"] and order[2] == "c:0"  # c waited for a's GPU
    assert pool.in_use() == {"0": 0, "1": 0}
    shared = GpuPool([LocalGpu("0", "X", 1.0)], per_gpu=2)

    async def two() -> list[str]:
        async with shared.lease() as first, shared.lease() as second:
            return [first.device_id, second.device_id]

    assert asyncio.run(two()) == ["0", "0"]


# -- the runtime against a twin of the Docker Engine API ---------------------------------------
@pytest.fixture
def fake_nvidia_smi(tmp_path, monkeypatch):
    """An `nvidia-smi` on PATH that prints two RTX A4000s as the real one's query does."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "nvidia-smi"
    script.write_text("#!/bin/sh\ncat <<'EOF'\n" + SMI + "EOF\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def _round(tmp_path: Path, monkeypatch, twin: DockerTwin, miners: int = 3, **limits):
    monkeypatch.setenv("DOCKER_HOST", twin.url)
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    twin.images.update(IMAGES)
    chain = DevChain(tmp_path / "devchain.sqlite", hotkey="validator/default")
    chain.register(1, "validator/default", validator_permit=True)
    for i in range(miners):
        chain.register(1, f"m{i}/default")
        chain.as_hotkey(f"m{i}/default").commit(1, f"local.invalid/env{i}@{IMAGES[i]}".encode())
    settings = Settings(_env_file=None, home=tmp_path / "home", netuid=1, tasks=2, call_timeout=10, start_timeout=20)
    runtime = DockerRuntime(settings, DockerSettings(_env_file=None, host_guard="off", **limits), allow_local=True)
    store = Store(tmp_path / "state.sqlite")
    try:
        validator = Validator(chain, runtime, EchoChallenge(), settings, store)
        report = aio.run(validator.run_round(plan_round(chain.commitments(1), lambda ref: str(ref)), b"seed"))
        records = [r for image in IMAGES[:miners] for r in store.results_for_digest(image)]
    finally:
        runtime.close()
        store.close()
    return report, records




def test_actors_get_one_gpu_each_through_device_requests_and_are_priced_by_it(tmp_path, monkeypatch, fake_nvidia_smi):
    twin = DockerTwin(gpus=["0", "1"])
    try:
        report, records = _round(tmp_path, monkeypatch, twin)
        creates = twin.creates()
    finally:
        twin.close()
    assert len(creates) == 3 and twin.containers == {}  # three Actors, all removed
    requests = [c["HostConfig"]["DeviceRequests"] for c in creates]
    assert all(r == [{"Driver": "nvidia", "Count": 0, "DeviceIDs": [r[0]["DeviceIDs"][0]],
                      "Capabilities": [["gpu"]], "Options": {}}] for r in requests)
    assert {r[0]["DeviceIDs"][0] for r in requests} == {"0", "1"}
    # What each container saw (dockerd turns DeviceIDs into NVIDIA_VISIBLE_DEVICES); never two at once.
    assert sorted(e["NVIDIA_VISIBLE_DEVICES"] for e in twin.started) == sorted(r[0]["DeviceIDs"][0] for r in requests)
    assert twin.shared_gpus == 0
    assert all(e["OMP_NUM_THREADS"] == "1" == e["OPENBLAS_NUM_THREADS"] for e in twin.started)
    assert [m.verified for m in report.miners] == [2, 2, 2]  # the third Actor waited for a free GPU
    assert {(r.gpu_type, r.hourly_price) for r in records} == {("RTX A4000", 0.16)}


def test_without_the_nvidia_runtime_no_device_request_is_ever_sent(tmp_path, monkeypatch, fake_nvidia_smi):
    twin = DockerTwin(gpus=[])
    try:
        report, records = _round(tmp_path, monkeypatch, twin, miners=2)
        creates = twin.creates()
    finally:
        twin.close()
    assert len(creates) == 2 and all(not c["HostConfig"].get("DeviceRequests") for c in creates)
    assert [m.verified for m in report.miners] == [2, 2]
    assert {(r.gpu_type, r.hourly_price) for r in records} == {(None, None)}


def test_gpus_named_on_a_daemon_without_the_nvidia_hook_are_an_infrastructure_fault(tmp_path, monkeypatch):
    twin = DockerTwin(gpus=[])
    try:
        report, records = _round(tmp_path, monkeypatch, twin, miners=1, gpus="0", gpu_type="RTX A4000")
    finally:
        twin.close()
    (miner,) = report.miners
    assert miner.faults == {"infra": 2} and miner.score == 0  # never the miner's fault
    assert 'could not select device driver "nvidia"' in miner.reasons["infra"]


# -- the validator command: sizes that fit ------------------------------------------------------
@pytest.fixture
def cli_home(tmp_path, monkeypatch):
    from subnet.cli import _register

    twin = DockerTwin(gpus=[])
    monkeypatch.setenv("DOCKER_HOST", twin.url)
    monkeypatch.setenv("SUBNET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SUBNET_DOCKER_HOST_GUARD", "off")
    for name in ("SUBNET_N", "SUBNET_DEPTH", "SUBNET_NETWORK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    _register()
    yield twin
    twin.close()


def _validator_once():
    from typer.testing import CliRunner

    from subnet.cli import app

    return CliRunner().invoke(app, ["validator", "run", "--network", "devchain", "--wallet.name", "validator",
                                    "--mode", "docker", "--once"])


def test_a_gpu_less_docker_validator_refuses_the_production_size_in_one_line(cli_home, monkeypatch):
    monkeypatch.setenv("SUBNET_N", "12800")
    monkeypatch.setenv("SUBNET_DEPTH", "2")
    result = _validator_once()
    assert result.exit_code == 1
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error")]
    assert line.startswith("error: n=12800 × depth 2 cannot run in a Docker Actor without a GPU: it needs 2.08 GiB")
    assert "SUBNET_DOCKER_MEMORY is 2g" in line and "Set SUBNET_N=256 SUBNET_DEPTH=4" in line
    assert line.endswith("(docs/validator.md)")  # whole, not cut
    assert cli_home.creates() == []


def test_the_devchain_loop_runs_the_dry_run_size_unless_told_otherwise(cli_home):
    result = _validator_once()
    assert result.exit_code == 0, result.output
    assert "note: devchain: tasks at the dry-run size 256×4" in result.stderr
    assert "nobody earned: all to the burn uid" in result.stdout  # nobody committed: uid 0, the owner
    store = next((Path(os.environ["SUBNET_HOME"]) / "subnets").glob("*/netuid-1.sqlite"))
    assert Store(store).recent_rounds(1)[0]["challenge"] == "matrix-chain/2[n=256,depth=4]"
