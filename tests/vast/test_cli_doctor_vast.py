"""`subnet doctor`'s Vast checks against the Vast twin: where the key came from (never the key), the API
answering, the balance and the cap."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from subnet.cli.doctor import doctor_app
from subnet.twins.vast import VastTwin

KEY = "vast-doctor-canary-c41d"
_VARS = ("VAST_API_KEY", "VAST_URL", "SUBNET_MAX_HOURLY_RATE", "BASILICA_MAX_HOURLY_RATE", "BASILICA_API_TOKEN",
         "BASILICA_API_KEY", "XDG_CONFIG_HOME")


@pytest.fixture
def twin(monkeypatch, tmp_path):
    for var in _VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SUBNET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SUBNET_NETWORK", "devchain")
    with VastTwin(api_key=KEY, credit=12.5) as t:
        monkeypatch.setenv("VAST_URL", t.base_url)
        yield t


def doctor(*args: str):
    result = CliRunner().invoke(doctor_app, ["--json", "--wallet-path", ".", *args])
    assert KEY not in result.output
    return result, {c["name"]: c for c in json.loads(result.stdout)["checks"]}


def test_key_from_the_environment_accepted_with_balance_and_cap(twin, monkeypatch):
    monkeypatch.setenv("VAST_API_KEY", KEY)
    result, checks = doctor()
    assert checks["vast"]["status"] == "ok"
    assert checks["vast"]["detail"] == f"key from VAST_API_KEY in the environment accepted by {twin.base_url}"
    assert checks["vast-balance"] == {"name": "vast-balance", "status": "ok", "detail": "balance $12.50", "fix": ""}
    cap = checks["vast-price-cap"]
    assert cap["status"] == "warn" and cap["detail"].startswith("default $0.44/h caps every Vast box")
    monkeypatch.setenv("BASILICA_MAX_HOURLY_RATE", "0.3")  # the old name still sets the cap ...
    assert doctor()[1]["vast-price-cap"]["detail"].startswith("BASILICA_MAX_HOURLY_RATE $0.30/h")
    monkeypatch.setenv("SUBNET_MAX_HOURLY_RATE", "0.25")  # ... and the new one wins
    _, checks = doctor()
    assert checks["vast-price-cap"]["status"] == "ok"
    assert checks["vast-price-cap"]["detail"] == ("SUBNET_MAX_HOURLY_RATE $0.25/h caps every Vast box: in the search "
                                                  "on demand (dph_total), as the bid on interruptible boxes")


def test_key_sources_are_named(twin, tmp_path, monkeypatch):
    (tmp_path / ".env.vast").write_text(f"VAST_API_KEY={KEY}\n")
    _, checks = doctor()
    assert checks["vast"]["detail"].startswith(f"key from VAST_API_KEY in {tmp_path / '.env.vast'} accepted")
    (tmp_path / ".env.vast").unlink()
    config = tmp_path / "xdg" / "vastai" / "vast_api_key"
    config.parent.mkdir(parents=True)
    config.write_text(KEY + "\n")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    _, checks = doctor()
    assert checks["vast"]["detail"].startswith(f"key from {config} accepted")
    _, checks = doctor("--vast-key", KEY)
    assert checks["vast"]["detail"].startswith("key from the --vast-key flag accepted")


def test_no_key_warns_and_a_refused_key_or_a_dead_api_fails(twin, monkeypatch):
    result, checks = doctor()
    assert checks["vast"]["status"] == "warn" and "VAST_API_KEY" in checks["vast"]["fix"]
    assert "vast-balance" not in checks and result.exit_code == 0
    monkeypatch.setenv("VAST_API_KEY", "not-" + KEY)
    result, checks = doctor()
    assert result.exit_code == 1 and checks["vast"]["status"] == "fail"
    assert checks["vast"]["detail"].startswith("key from VAST_API_KEY in the environment refused")
    assert "not-" + KEY not in result.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("VAST_URL", f"http://127.0.0.1:{s.getsockname()[1]}")
    monkeypatch.setenv("VAST_API_KEY", KEY)
    result, checks = doctor()
    assert result.exit_code == 1 and "API not reachable" in checks["vast"]["detail"]
