"""`subnet dry-run` pays an LLM env through the real gateway and the twin upstream, with no key,
and its LLM spend is in the report and in the score (issue 16)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from test_dry_run import run_dry_run
from subnet.compute.settings import DEFAULT_CPU_HOURLY_RATE
from subnet.dryrun.llm import by_challenge, env_challenge

REPO = Path(__file__).resolve().parents[1]
LLM_ENV = REPO / "envs" / "prose-ledger-openai"
NUMPY_ENV = REPO / "envs" / "matrix-chain-numpy"


def spendthrift_env(root: Path) -> Path:
    """The reference LLM env asking the model three times per task: same answers, 3× the dollars."""
    env_dir = root / "prose-ledger-spendthrift"
    shutil.copytree(LLM_ENV, env_dir)
    source = (env_dir / "env.py").read_text()
    call = "        reply = await self.client("
    assert source.count(call) == 1, "the reference env's call changed: update this test"
    (env_dir / "env.py").write_text(source.replace(call, "        for _ in range(3):\n    " + call))
    return env_dir


def reports_by_challenge(data: dict) -> dict[str, dict]:
    return {r["challenge"]: r for r in data["rounds"]}


def test_dry_run_pays_the_llm_env_and_reports_its_spend(tmp_path, monkeypatch):
    monkeypatch.delenv("SUBNET_LLM_API_KEY", raising=False)  # no key: the twin needs none
    monkeypatch.delenv("CHUTES_API_KEY", raising=False)
    spendthrift = spendthrift_env(tmp_path)
    data = run_dry_run("--env", str(LLM_ENV), "--env", str(spendthrift), "--env", str(NUMPY_ENV),
                       "--tasks", "3", "--n", "64", "--depth", "2")
    rounds = reports_by_challenge(data)
    assert set(rounds) == {"matrix-chain", "prose-ledger/1"}
    (numpy,) = rounds["matrix-chain"]["miners"]
    assert numpy["llm_usd"] == 0 and numpy["weight"] == 1.0
    llm = {m["env"]: m for m in rounds["prose-ledger/1"]["miners"]}
    honest, costly = llm["prose-ledger-openai"], llm["prose-ledger-spendthrift"]
    for miner in (honest, costly):
        assert miner["verified"] == 3 and miner["accuracy"] == 1.0, miner
    assert honest["llm_usd"] > 0
    # The gateway's meter, not the env's word: three calls a task cost about three times as much.
    assert 2.5 * honest["llm_usd"] < costly["llm_usd"] < 3.5 * honest["llm_usd"]
    assert costly["score"] < honest["score"] and costly["weight"] < honest["weight"]


def test_envs_declare_their_challenge_read_without_importing(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "env.py").write_text("raise SystemExit('never imported')\n")
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "env.py").write_text("CHALLENGE = 42\n")
    assert env_challenge(LLM_ENV) == "prose-ledger/1"
    assert env_challenge(plain) == env_challenge(odd) == env_challenge(tmp_path / "missing") == "matrix-chain/2"
    assert list(by_challenge([LLM_ENV, plain])) == ["matrix-chain/2", "prose-ledger/1"]


def test_dry_run_with_a_real_upstream_uses_its_key_and_never_prints_it(tmp_path):
    """`--llm-upstream URL` with SUBNET_LLM_API_KEY: the gateway forwards with that key (the
    upstream here refuses any other) and no line the command prints holds it."""
    import json
    import subprocess
    import sys

    from llm_probe import leaked, new_canary
    from subnet.twins.llm_upstream import ORACLE_MODEL, LlmUpstreamTwin

    canary = new_canary()
    twin = LlmUpstreamTwin(api_key=canary).start()
    try:
        env = {**__import__("os").environ, "SUBNET_LLM_API_KEY": canary, "SUBNET_LLM_MODELS": ORACLE_MODEL,
               "SUBNET_HOME": str(tmp_path / "home")}
        cmd = [sys.executable, "-m", "subnet", "dry-run", "--mode", "process", "--json", "--env", str(LLM_ENV),
               "--tasks", "2", "--llm-upstream", twin.url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    finally:
        twin.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    (miner,) = json.loads(done.stdout)["miners"]
    assert miner["verified"] == 2 and miner["llm_usd"] > 0
    assert all(headers.get("authorization") == f"Bearer {canary}" for headers, _ in twin.requests)
    assert not leaked(canary, done.stdout, done.stderr)


def test_dry_run_in_basilica_mode_pays_the_llm_env(monkeypatch):
    """The real Basilica runtime against its twin: the deployment's env carries the gateway's URL (the
    twin's Actors are on this machine, so loopback stands in for SUBNET_GATEWAY_PUBLIC_URL) and
    the round's token; the env is paid and its LLM dollars reported beside what the box cost."""
    monkeypatch.delenv("SUBNET_LLM_API_KEY", raising=False)
    monkeypatch.delenv("CHUTES_API_KEY", raising=False)
    monkeypatch.delenv("BASILICA_CPU_HOURLY_RATE", raising=False)
    data = run_dry_run("--env", str(LLM_ENV), "--tasks", "2", mode="basilica")
    (miner,) = data["miners"]
    assert data["mode"] == "basilica" and data["challenge"] == "prose-ledger/1"
    assert miner["verified"] == 2 and miner["weight"] == 1.0 and miner["llm_usd"] > 0
    assert data["basilica"]["deployments_created"] == data["basilica"]["deployments_deleted"] == 1
    # prose-ledger/1 needs no GPU: a CPU-only deployment at BASILICA_CPU_HOURLY_RATE (default, an estimate)
    assert data["basilica"]["gpu_type"] == "CPU" and data["basilica"]["hourly_price"] == float(DEFAULT_CPU_HOURLY_RATE)
    assert data["basilica"]["dollars_source"] == "estimate"


def test_dry_run_in_basilica_mode_rents_a_gpu_only_for_the_challenge_that_needs_one(monkeypatch):
    """matrix-chain needs a GPU, prose-ledger/1 none: one run, the first deployment asks for the cheapest
    allowed GPU offering, the second for no GPU at all; both envs paid, nothing left deployed."""
    monkeypatch.delenv("SUBNET_LLM_API_KEY", raising=False)
    monkeypatch.delenv("CHUTES_API_KEY", raising=False)
    data = run_dry_run("--env", str(LLM_ENV), "--env", str(NUMPY_ENV), "--tasks", "2", mode="basilica")
    assert [r["challenge"] for r in data["rounds"]] == ["matrix-chain", "prose-ledger/1"]
    assert all(m["verified"] == 2 for r in data["rounds"] for m in r["miners"])
    gpu, cpu = data["basilica"]["deployed_on"]
    assert "V100" in gpu and cpu == "CPU"
    assert data["basilica"]["deployments_left"] == 0


def test_an_upstream_that_does_not_answer_is_one_line(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    cmd = [sys.executable, "-m", "subnet", "dry-run", "--mode", "process", "--env", str(LLM_ENV), "--tasks", "1",
           "--llm-upstream", dead]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: LLM gateway: cannot read LLM prices from " + dead)


@pytest.mark.parametrize("mode", ["vast", "cloud"])
def test_dry_run_on_rented_boxes_pays_the_llm_env(monkeypatch, mode):
    """The Vast runtime (and the cloud runtime placing the miner) against the twins: the instance's env
    carries the gateway's URL and the round's token beside the instance's own Actor token; the env is
    paid and its LLM dollars reported beside what the box cost, and nothing is left rented."""
    monkeypatch.delenv("SUBNET_LLM_API_KEY", raising=False)
    monkeypatch.delenv("CHUTES_API_KEY", raising=False)
    data = run_dry_run("--env", str(LLM_ENV), "--tasks", "2", mode=mode)
    (miner,) = data["miners"]
    assert data["mode"] == mode and data["challenge"] == "prose-ledger/1"
    assert miner["verified"] == 2 and miner["weight"] == 1.0 and miner["llm_usd"] > 0
    rented = [v for v in data.values() if isinstance(v, dict) and "deployments_created" in v]
    assert rented and all(r["deployments_created"] == r["deployments_deleted"] for r in rented)
    assert sum(r["deployments_created"] for r in rented) == 1
