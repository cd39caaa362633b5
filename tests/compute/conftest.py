"""Fixtures for the Basilica tests: a twin on loopback driven by the REAL basilica SDK."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from subnet.cli.gpus import gpus_app
from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.ledger import Ledger
from subnet.compute.settings import load_settings
from subnet.twins.basilica_twin import BasilicaTwin, offering

TOKEN = "twin-secret-7f3a"

# Deliberately unsorted, with the traps the policy must not fall into.
CATALOGUE = [
    offering("a6000-spot", "RTX-A6000", "0.44", is_spot=True),  # exactly at the cap: allowed
    offering("a4000-2x", "RTX-A4000", "0.155", gpu_count=2),  # box 0.31; per GPU 0.155 < a4000-1x's 0.16
    offering("a6000-od", "RTX-A6000", "0.40"),  # under the cap but on-demand A6000 is not allowed
    offering("v100-4x", "Tesla V100", "0.10", gpu_count=4),  # box 0.40 under the cap, but 4x not allowed
    offering("a4000-2x-pricey", "RTX-A4000", "0.25", gpu_count=2),  # per GPU under the cap, box 0.50 over
    offering("v100-od", "TESLA V100", "0.15"),
    offering("h100", "H100", "2.10", provider="plum"),
    offering("v100-gone", "TESLA V100", "0.01", is_spot=True, available=False),  # not available now
    offering("a4000-1x", "RTX-A4000", "0.16", region="eu-north-1"),
    offering("v100-sxm2-spot", "TESLA V100-SXM2-16GB", "0.06", is_spot=True),
    offering("v100-spot-4x", "TESLA V100", "0.05", gpu_count=4, is_spot=True),  # box 0.20, count not allowed
]
ALLOWED_ORDER = ["v100-sxm2-spot", "v100-od", "a4000-1x", "a4000-2x", "a6000-spot"]

_VARS = ("BASILICA_API_TOKEN", "BASILICA_API_KEY", "BASILICA_API_URL", "BASILICA_MAX_HOURLY_RATE",
         "BASILICA_ALLOWED_GPU_TYPES", "BASILICA_RETRIES", "BASILICA_BACKOFF", "BASILICA_TIMEOUT",
         "BASILICA_REQUESTS_PER_MINUTE", "BASILICA_REQUEST_BURST",
         "BASILICA_SSH_PUBLIC_KEY", "SUBNET_HOME", "SUBNET_NETWORK")


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No stray BASILICA_* or .env from the developer's shell; cwd is an empty temp dir."""
    for var in _VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SUBNET_HOME", str(tmp_path / "home"))
    return tmp_path


@pytest.fixture
def twin():
    with BasilicaTwin(token=TOKEN, offerings=CATALOGUE) as t:
        t.register_ssh_key()
        yield t


@pytest.fixture
def env(clean_env, twin, monkeypatch):
    monkeypatch.setenv("BASILICA_API_URL", twin.url)
    monkeypatch.setenv("BASILICA_API_TOKEN", TOKEN)
    monkeypatch.setenv("BASILICA_BACKOFF", "0.01")  # retries stay fast
    monkeypatch.setenv("BASILICA_REQUESTS_PER_MINUTE", "0")  # the twin has no rate limit unless a test sets one
    return clean_env


@pytest.fixture
def ledger_path(env):
    return env / "home" / "state.sqlite"


@pytest.fixture
def ledger(ledger_path):
    with Ledger(ledger_path) as led:
        yield led


@pytest.fixture
def client(env, ledger):
    return BasilicaGPUClient(load_settings(), ledger=ledger)


class Cli:
    def __init__(self):
        self.runner = CliRunner()

    def __call__(self, *args: str):
        return self.runner.invoke(gpus_app, list(args))

    def json(self, *args: str, code: int = 0):
        result = self(*args, "--json")
        assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr)
        return json.loads(result.stdout)


@pytest.fixture
def cli():
    return Cli()


@pytest.fixture
def token():
    return TOKEN


@pytest.fixture
def catalogue():
    return CATALOGUE


@pytest.fixture
def allowed_order():
    return ALLOWED_ORDER
