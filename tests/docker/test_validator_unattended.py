"""The issue's "done when", on the devchain through the real CLI: a validator runs several rounds
unattended in Docker mode, runs the miner's image once (later rounds are scored from the store),
and shows its work on /metrics, /leaderboard and `subnet validator status --json`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from subnet.runtime.process import free_port

pytestmark = pytest.mark.docker


def metric(text: str, name: str, **labels) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None


def test_several_rounds_unattended_with_metrics_and_status(reference_image, tmp_path, docker_client):
    port = free_port()
    env = {**os.environ, "SUBNET_HOME": str(tmp_path), "SUBNET_TASKS": "3", "SUBNET_N": "64",
           "SUBNET_METRICS_PORT": str(port), "SUBNET_LOG_JSON": "1"}
    cli = [sys.executable, "-m", "subnet"]
    committed = subprocess.run([*cli, "miner", "commit", reference_image.reference, "--network", "devchain",
                                "--wallet.name", "miner"], env=env, capture_output=True, text=True, timeout=60)
    assert committed.returncode == 0, committed.stderr
    validator = subprocess.Popen([*cli, "validator", "run", "--network", "devchain", "--wallet.name", "validator",
                                  "--mode", "docker", "--interval", "1", "--json"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        text = ""
        while time.monotonic() < deadline:
            try:
                text = httpx.get(f"{url}/metrics", timeout=2).text
                if (metric(text, "subnet_rounds_total") or 0) >= 3:
                    break
            except httpx.HTTPError:
                pass
            assert validator.poll() is None, validator.stderr.read()[-2000:]
            time.sleep(0.5)
        else:
            pytest.fail(f"fewer than 3 rounds in 240 s:\n{text[-2000:]}")
        assert metric(text, "subnet_evaluations_total", outcome="verified", fault="none") == 3  # one run only
        assert metric(text, "subnet_cache_hits_total") >= 2
        assert metric(text, "subnet_weights_total", status="set") >= 3
        board = httpx.get(f"{url}/leaderboard", timeout=5).json()
        assert [(m["hotkey"], m["weight"], m["cached"]) for m in board["miners"]] == [("miner/default", 1.0, True)]
        assert httpx.get(f"{url}/health", timeout=5).json()["status"] == "ok"
    finally:
        validator.send_signal(signal.SIGINT)
        try:
            out, err = validator.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            validator.kill()
            out, err = validator.communicate()
    reports = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [r["evaluated"] for r in reports[:3]] == [1, 0, 0]
    for line in err.splitlines():  # SUBNET_LOG_JSON=1: every log line is one JSON object
        if line.startswith("{"):
            assert json.loads(line)["level"] in {"debug", "info", "warning", "error", "critical"}
    status = subprocess.run([*cli, "validator", "status", "--json"], env=env, capture_output=True, text=True, timeout=60)
    payload = json.loads(status.stdout)
    assert payload["network"] == "devchain" and payload["cache"]["evaluated"] == 1
    assert payload["cache"]["cached"] >= 2 and payload["last_weights"]["status"] == "set"
