"""`subnet dry-run --mode docker` judges envs exactly as the process runtime does, in hardened
containers, and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from subnet.state.identity import validator_identity
from docker_support import owned_by
from envs_factory import make_broken_env, make_env
from test_dry_run import BROKEN, FAULTY, by_env, run_dry_run

# The module's round builds nine env images and runs them (its dry run allows 900 s): pytest-timeout's
# 300 s default per test counts that fixture's setup, and a loaded machine took it past 300 s once.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

KINDS = ["raises", "self_scored", "wrong", "skipped_layer", "huge", "hangs"]


@pytest.fixture(scope="module")
def docker_round(docker_client, base_image, tmp_path_factory):
    root = tmp_path_factory.mktemp("docker-envs")
    envs = [make_env(root, "honest"), make_env(root, "slow")]
    envs += [make_env(root, kind) for kind in KINDS]
    envs.append(make_broken_env(root, "no_actor"))
    args = [a for env in envs for a in ("--env", str(env))]
    home = tmp_path_factory.mktemp("home")  # its own validator identity, to find its leftovers by
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SUBNET_HOME", str(home))
        report = run_dry_run(*args, "--tasks", "4", "--timeout", "8", "--n", "128", "--depth", "3", mode="docker",
                             timeout=900)
    return report, validator_identity(home)


def test_docker_round_pays_honest_envs_only(docker_round):
    report, _ = docker_round
    assert report["mode"] == "docker"
    miners = by_env(report)
    assert miners["honest"]["verified"] == 4 and miners["honest"]["weight"] > 0
    assert miners["slow"]["verified"] == 4 and 0 < miners["slow"]["weight"] < miners["honest"]["weight"]
    for kind in KINDS:
        assert miners[kind]["weight"] == 0
        assert miners[kind]["faults"] == {FAULTY[kind]: 4}, miners[kind]
    assert miners["no_actor"]["faults"] == {BROKEN["no_actor"]: 4}


def test_docker_round_leaves_no_container_or_network(docker_round, docker_client):
    _, identity = docker_round
    # Only this run's: other validators and test runs share the daemon.
    assert owned_by(docker_client, identity) == ([], [])


def test_a_docker_dry_run_off_a_terminal_prints_one_line_per_build_step(docker_client, base_image, tmp_path):
    env = make_env(tmp_path, "honest")
    done = subprocess.run([sys.executable, "-m", "subnet", "dry-run", "--mode", "docker", "--env", str(env),
                           "--tasks", "2", "--n", "64", "--depth", "2"], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "SUBNET_HOME": str(tmp_path / "home")})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stderr.splitlines()
    assert "uid 2 honest: building the image" in lines
    assert "uid 2 honest: [1/2] building " + str(env) + " with its own Dockerfile" in lines
    assert any(line.startswith("uid 2 honest: Step 1/") for line in lines)
    assert any(line.startswith("uid 2 honest: built subnet-dry-run/uid2:") for line in lines)
