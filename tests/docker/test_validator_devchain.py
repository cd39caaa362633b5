"""The single-machine loop of the validator guide: build → `miner commit` on the devchain →
`validator run --once` in Docker mode, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from subnet.state.identity import validator_identity
from docker_support import owned_by

pytestmark = pytest.mark.docker


def subnet(*args: str, home, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "SUBNET_HOME": str(home), "SUBNET_TASKS": "4", "SUBNET_N": "128"}
    return subprocess.run([sys.executable, "-m", "subnet", *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_commit_then_validate_on_the_devchain(reference_image, tmp_path, docker_client):
    committed = subnet("miner", "commit", reference_image.reference, "--network", "devchain",
                       "--wallet.name", "miner", "--json", home=tmp_path)
    assert committed.returncode == 0, committed.stderr
    assert json.loads(committed.stdout)["data"] == reference_image.reference

    copied = subnet("miner", "commit", reference_image.reference, "--network", "devchain",
                    "--wallet.name", "copycat", "--json", home=tmp_path)
    assert copied.returncode == 0, copied.stderr

    ran = subnet("validator", "run", "--network", "devchain", "--wallet.name", "validator",
                 "--mode", "docker", "--once", "--json", home=tmp_path)
    assert ran.returncode == 0, ran.stderr[-2000:]
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    miners = {m["hotkey"]: m for m in report["miners"]}
    assert miners["miner/default"]["verified"] == 4 and miners["miner/default"]["weight"] == 1.0
    assert miners["copycat/default"]["faults"] == {"copy": 4} and miners["copycat/default"]["weight"] == 0
    assert report["weights_set"].startswith("set for")
    # Nothing of this validator's is left (other validators and test runs share the daemon).
    assert owned_by(docker_client, validator_identity(tmp_path)) == ([], [])

    # A second round reuses the stored state: first-seen ownership and the smoothed score hold.
    again = subnet("validator", "run", "--network", "devchain", "--wallet.name", "validator",
                   "--mode", "docker", "--once", "--json", home=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout.strip().splitlines()[-1])["weights"] == {str(miners["miner/default"]["uid"]): 1.0}


def test_a_local_reference_on_a_real_network_is_refused_not_run(tmp_path):
    from subnet.chain.base import RawCommitment
    from subnet.validator.loop import image_resolver
    from subnet.validator.service import plan_round

    ref = "local.invalid/x:dev@sha256:" + "1" * 64
    plan = plan_round([RawCommitment("hk", 3, 10, ref.encode())], image_resolver(allow_local=False))
    assert plan.submissions == []
    assert plan.rejected[0].kind == "unresolvable" and "push to a registry" in plan.rejected[0].reason


def guide(*args: str, home) -> subprocess.CompletedProcess:
    """A command exactly as the guides write it: no SUBNET_* variable but the throwaway home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUBNET_")} | {"SUBNET_HOME": str(home),
                                                                                  "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "subnet", *args], capture_output=True, text=True, env=env,
                          timeout=600, cwd=home.parent)


def test_the_guides_loop_as_written_scores_the_reference_env(reference_image, tmp_path, docker_client):
    """docs/miner.md and docs/validator.md, "the whole loop on one machine", word for word."""
    home = tmp_path / "home"
    committed = guide("miner", "commit", reference_image.reference, "--network", "devchain", "--wallet.name", "miner",
                      home=home)
    assert committed.returncode == 0, committed.stderr
    assert "devchain: registered miner/default as uid 1" in committed.stderr  # uid 0 is the subnet owner's
    ran = guide("validator", "run", "--network", "devchain", "--wallet.name", "validator", "--mode", "docker", "--once",
                home=home)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "registered validator/default on the devchain as uid 2" in ran.stderr
    row = next(line for line in ran.stdout.splitlines() if line.strip().startswith("1 "))
    assert row.split()[2:3] == ["8/8"] and row.split()[5] == "1.000", ran.stdout  # ok 8/8, weight 1.000
    assert "weights set for 1 uids ·" in ran.stdout and "nobody earned" not in ran.stdout
    assert max(len(line) for line in ran.stdout.splitlines()) <= 80
    status = guide("validator", "status", home=home)
    assert "burn uid: 0 (the subnet owner subnet-owner)" in status.stdout
    assert owned_by(docker_client, validator_identity(home)) == ([], [])


def test_a_mistyped_local_digest_is_not_committed_on_the_devchain(reference_image, tmp_path):
    typo = reference_image.reference[:-4] + ("0000" if not reference_image.reference.endswith("0000") else "1111")
    result = guide("miner", "commit", typo, "--network", "devchain", "--wallet.name", "miner", home=tmp_path / "home")
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: not committed: no image {typo.rsplit('@', 1)[1]} in the local Docker store")
    assert "subnet miner build" in line
