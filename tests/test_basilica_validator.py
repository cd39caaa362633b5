"""Basilica mode end to end through the real CLI: `subnet dry-run --mode basilica`, and
`subnet validator run --mode basilica --network devchain` against the twin, including a SIGKILL in
the middle of a round and a restart that deletes what the killed process left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from subnet.runtime.process import ProcessRuntime
from subnet.twins.basilica_twin import BasilicaTwin
from subnet.twins.deployment_host import ActorHost

from envs_factory import make_broken_env, make_env
from test_dry_run import run_dry_run

TOKEN = "twin-token-e2e"


def test_dry_run_in_basilica_mode_pays_honest_envs_only(tmp_path):
    root = tmp_path / "envs"
    envs = [make_env(root, "honest"), make_env(root, "wrong"), make_env(root, "raises"),
            make_broken_env(root, "exits_at_import")]
    report = run_dry_run(*[a for e in envs for a in ("--env", str(e))], "--tasks", "3", "--n", "64",
                         "--depth", "2", mode="basilica")
    miners = {m["env"]: m for m in report["miners"]}
    assert report["mode"] == "basilica"
    assert miners["honest"]["verified"] == 3 and miners["honest"]["weight"] == 1.0
    assert miners["wrong"]["faults"] == {"wrong_answer": 3} and miners["wrong"]["weight"] == 0
    assert miners["raises"]["faults"] == {"error": 3}
    assert miners["exits_at_import"]["faults"] == {"start_failed": 3}
    assert "exited with code 3" in miners["exits_at_import"]["reason"]  # the container's own last line
    rented = report["basilica"]  # what the dry run rented, and whether its dollars are billed
    assert (rented["gpu_type"], rented["hourly_price"]) == ("TESLA V100", 0.05)
    assert rented["deployments_created"] == rented["deployments_deleted"] == 4 and rented["deployments_left"] == 0
    assert rented["dollars"] > 0 and rented["dollars_source"] == "estimate"


def test_dry_run_in_basilica_mode_prints_what_it_rented(tmp_path):
    env = make_env(tmp_path / "envs", "honest")
    done = subprocess.run([sys.executable, "-m", "subnet", "dry-run", "--mode", "basilica", "--env", str(env),
                           "--tasks", "2", "--n", "64", "--depth", "2"], capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("basilica:"))
    assert "TESLA V100 at $0.05/h" in line and "1 created, 1 deleted, 0 left" in line and "(estimate)" in line


def image(uid: int) -> str:
    return f"docker.io/miner{uid}/env@sha256:" + f"{uid:02x}" * 32


@pytest.fixture
def world(tmp_path):
    """A twin running deployments for real, and the environment a validator subprocess needs."""
    root = tmp_path / "envs"
    envs = {1: make_env(root, "slow", "slow-honest"), 2: make_broken_env(root, "exits_at_import")}
    host = ActorHost(ProcessRuntime(start_timeout=30), resolve={image(u): str(p) for u, p in envs.items()}.__getitem__)
    with BasilicaTwin(token=TOKEN, actor_host=host) as twin:
        env = {**os.environ, "SUBNET_HOME": str(tmp_path / "home"), "BASILICA_API_URL": twin.url,
               "BASILICA_API_TOKEN": TOKEN, "BASILICA_BACKOFF": "0.01", "BASILICA_REQUESTS_PER_MINUTE": "0", "SUBNET_N": "64", "SUBNET_DEPTH": "2",
               "SUBNET_TASKS": "3"}
        for uid in envs:
            done = subprocess.run([sys.executable, "-m", "subnet", "miner", "commit", image(uid), "--network",
                                   "devchain", "--wallet.name", f"miner{uid}", "--json"],
                                  capture_output=True, text=True, env=env, timeout=120)
            assert done.returncode == 0, done.stderr
        yield twin, env


def validator(env: dict, *args: str) -> list[str]:
    return [sys.executable, "-m", "subnet", "validator", "run", "--network", "devchain", "--wallet.name",
            "validator", "--mode", "basilica", *args]


def test_validator_run_in_basilica_mode_pays_the_honest_image_and_leaves_nothing(world):
    twin, env = world
    done = subprocess.run(validator(env, "--once", "--json"), capture_output=True, text=True, env=env, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    miners = {m["hotkey"]: m for m in report["miners"]}
    assert miners["miner1/default"]["verified"] == 3 and miners["miner1/default"]["weight"] == 1.0
    assert miners["miner2/default"]["faults"] == {"start_failed": 3}
    assert len(twin.requests("POST", "/deployments")) == 2  # one per image
    assert twin.deployments == {} and all(c.token_ok for c in twin.front_requests())


def test_sigkill_mid_round_then_restart_deletes_every_leftover(world):
    twin, env = world
    env = {**env, "SUBNET_TASKS": "40"}  # a long round: 40 × 0.6 s
    proc = subprocess.Popen(validator(env, "--once"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(c.path == "/call" for c in twin.front_requests()):
        time.sleep(0.1)
    assert any(c.path == "/call" for c in twin.front_requests()), "the round never started calling"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    left = set(twin.deployments)
    assert left, "the kill should have left a live deployment behind"

    started = time.monotonic()
    restart = subprocess.Popen(validator({**env, "SUBNET_TASKS": "1"}, "--once"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, env={**env, "SUBNET_TASKS": "1"})
    while time.monotonic() - started < 60 and left & set(twin.deployments):
        time.sleep(0.1)
    reclaimed_in = time.monotonic() - started
    assert not left & set(twin.deployments), "leftovers still running a minute after the restart"
    assert restart.wait(240) == 0, restart.stderr.read()[-3000:]
    assert twin.deployments == {}
    deleted = {r["path"].rsplit("/", 1)[-1] for r in twin.requests("DELETE")}
    assert left <= deleted and reclaimed_in < 60
