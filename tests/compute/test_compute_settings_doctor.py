"""Token precedence, settings errors, and `subnet doctor`."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from subnet.cli.doctor import check_chain, check_disk, check_python, check_wallet, doctor_app
from subnet.compute import ConfigError, load_settings


def test_token_precedence_cli_then_token_then_key_then_dotenv(clean_env, monkeypatch):
    (clean_env / ".env").write_text("BASILICA_API_TOKEN=from-dotenv\nBASILICA_API_URL=http://dotenv:1\n")
    assert load_settings().token() == "from-dotenv"
    assert load_settings().api_url == "http://dotenv:1"
    monkeypatch.setenv("BASILICA_API_KEY", "from-legacy-key")
    assert load_settings().token() == "from-legacy-key"
    monkeypatch.setenv("BASILICA_API_TOKEN", "from-token")
    assert load_settings().token() == "from-token"
    assert load_settings(api_key="from-cli").token() == "from-cli"


def test_empty_token_variable_does_not_hide_the_legacy_key(clean_env, monkeypatch):
    monkeypatch.setenv("BASILICA_API_TOKEN", "")
    monkeypatch.setenv("BASILICA_API_KEY", "legacy")
    assert load_settings().token() == "legacy"


def test_dotenv_legacy_key_is_honoured(clean_env):
    (clean_env / ".env").write_text("BASILICA_API_KEY=dotenv-legacy\n")
    assert load_settings().token() == "dotenv-legacy"


def test_missing_token_names_the_variable(clean_env):
    with pytest.raises(ConfigError, match=r"^no Basilica API token: set BASILICA_API_TOKEN \(or pass --api-key\)$"):
        load_settings().token()


def test_token_is_never_in_repr(clean_env, monkeypatch):
    monkeypatch.setenv("BASILICA_API_TOKEN", "super-secret-123")
    assert "super-secret-123" not in repr(load_settings()) + str(load_settings().model_dump())


def test_defaults(clean_env):
    s = load_settings()
    assert s.api_url == "https://api.basilica.ai" and str(s.cap) == "0.44" and s.retries == 4


# ---- doctor ----------------------------------------------------------------------------------


def test_python_check():
    assert check_python((3, 10, 0)).status == "ok"
    old = check_python((3, 9, 18))
    assert (old.status, old.detail) == ("fail", "Python 3.9.18 is older than 3.10")


def test_wallet_check(tmp_path):
    missing = check_wallet("cold", "hot", tmp_path, "finney")
    assert missing.status == "fail" and missing.fix == "btcli wallet new-hotkey -w cold -H hot"
    assert check_wallet("cold", "hot", tmp_path, "devchain").status == "warn"
    (tmp_path / "cold" / "hotkeys").mkdir(parents=True)
    (tmp_path / "cold" / "hotkeys" / "hot").write_text("{}")
    assert check_wallet("cold", "hot", tmp_path, "finney").status == "ok"


def test_chain_check_reachable_unreachable_and_devchain():
    assert check_chain("devchain").status == "ok"
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert check_chain(f"ws://127.0.0.1:{port}").status == "ok"
    closed = check_chain(f"ws://127.0.0.1:{port}", timeout=1)
    assert closed.status == "fail" and closed.detail.startswith(f"cannot reach ws://127.0.0.1:{port}")
    assert check_chain("mainnet").status == "fail"


def test_disk_check_measures_the_nearest_existing_parent(tmp_path):
    check = check_disk(tmp_path / "not" / "yet")
    assert check.status in ("ok", "warn") and str(tmp_path) in check.detail


def test_doctor_json_against_the_twin(env, tmp_path, monkeypatch):
    monkeypatch.setenv("SUBNET_NETWORK", "devchain")
    result = CliRunner().invoke(doctor_app, ["--json", "--wallet-path", str(tmp_path / "wallets")])
    out = json.loads(result.stdout)
    checks = {c["name"]: c for c in out["checks"]}
    assert checks["basilica"]["status"] == "ok" and checks["basilica-balance"]["detail"] == "balance $25.00"
    assert checks["wallet"]["status"] == "warn" and checks["chain"]["status"] == "ok"
    cap = checks["basilica-price-cap"]  # an unenforceable cap is said, with the enforceable bounds
    assert cap["status"] == "warn" and "SUBNET_MAX_ROUND_SPEND" in cap["fix"] and "$0.44/h" in cap["detail"]
    assert result.exit_code == 0 and out["ok"] is True  # warnings alone do not fail


def test_doctor_fails_on_a_rejected_token_and_unreachable_chain(env, tmp_path, monkeypatch):
    monkeypatch.setenv("BASILICA_API_TOKEN", "revoked")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"ws://127.0.0.1:{s.getsockname()[1]}"
    result = CliRunner().invoke(doctor_app, ["--json", "--network", dead, "--wallet.path", str(tmp_path)])
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert result.exit_code == 1
    assert checks["basilica"]["status"] == "fail" and "check BASILICA_API_TOKEN" in checks["basilica"]["detail"]
    assert checks["chain"]["status"] == "fail" and checks["wallet"]["status"] == "fail"
    assert "revoked" not in result.stdout


def test_doctor_without_token_warns(clean_env, tmp_path):
    result = CliRunner().invoke(doctor_app, ["--wallet-path", str(tmp_path)])
    assert "warn basilica" in result.stdout and "BASILICA_API_TOKEN" in result.stdout
    assert result.exit_code == 0
