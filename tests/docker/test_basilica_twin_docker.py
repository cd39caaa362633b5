"""The operator guide's single-machine Basilica loop: the twin as a module runs each deployment's
image as a hardened local container; `validator run --mode basilica` on the devchain pays it and
leaves no deployment and no container behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

pytestmark = pytest.mark.docker

TOKEN = "twin-token-docker"


def test_validator_in_basilica_mode_against_the_module_twin(reference_image, docker_client, tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "SUBNET_HOME": str(home), "SUBNET_TASKS": "3", "SUBNET_N": "64", "SUBNET_DEPTH": "2"}
    twin = subprocess.Popen([sys.executable, "-m", "subnet.dryrun.basilica_twin", "--port", "0", "--token", TOKEN,
                             "--run-actors", "docker"], stdout=subprocess.PIPE, text=True,
                            env={**env, "SUBNET_HOME": str(tmp_path / "twin-home")})
    try:
        url = twin.stdout.readline().split("listening on ")[1].split()[0]
        env |= {"BASILICA_API_URL": url, "BASILICA_API_TOKEN": TOKEN, "BASILICA_REQUESTS_PER_MINUTE": "0"}
        committed = subprocess.run([sys.executable, "-m", "subnet", "miner", "commit", reference_image.reference,
                                    "--network", "devchain", "--wallet.name", "miner", "--json"],
                                   capture_output=True, text=True, env=env, timeout=120)
        assert committed.returncode == 0, committed.stderr
        ran = subprocess.run([sys.executable, "-m", "subnet", "validator", "run", "--network", "devchain",
                              "--wallet.name", "validator", "--mode", "basilica", "--once", "--json"],
                             capture_output=True, text=True, env=env, timeout=300)
        assert ran.returncode == 0, ran.stderr[-3000:]
        (miner,) = json.loads(ran.stdout.strip().splitlines()[-1])["miners"]
        assert miner["verified"] == 3 and miner["weight"] == 1.0, miner
        requests = httpx.get(f"{url}/_twin/requests").json()
        assert len([r for r in requests if (r["method"], r["path"]) == ("POST", "/deployments")]) == 1
        assert httpx.get(f"{url}/_twin/deployments").json() == {}
    finally:
        twin.terminate()
        twin.wait(30)
    # the twin's Actors (uid 0 on the twin's side) of this image; other tests may share the daemon
    mine = {"label": ["subnet.role", "subnet.uid=0"], "ancestor": reference_image.image_id}
    assert docker_client.containers.list(all=True, filters=mine) == []
