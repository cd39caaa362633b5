"""`subnet validator run` network choice, `subnet validator status`, and the neuron defaults."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from subnet.util import aio
from subnet.chain.devchain import DevChain
from subnet.cli import _register, app
from subnet.cli.validator_status import leaderboard_table, short_ref
from subnet.config import Settings
from subnet.twins.standin import EchoChallenge, StandInRuntime
from subnet.state.files import open_subnet_store
from subnet.validator.service import Validator, plan_round

REPO = Path(__file__).resolve().parents[2]
LONG_REF = "registry.example-company.internal.io:5443/team/very-long-repository-name/env:v12@sha256:" + "ab" * 32


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SUBNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SUBNET_NETWORK", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    _register()
    return tmp_path / "home"


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_a_real_wallet_never_silently_runs_on_the_devchain(home, wallets):
    root = str(Path(wallets["validator"].path).expanduser())
    result = invoke("validator", "run", "--wallet.name", "validator", "--wallet.path", root, "--once")
    assert result.exit_code == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: no network chosen and validator/default is a real wallet: pass --network finney")
    assert not (home / "devchain.sqlite").exists()


def test_the_neuron_entry_points_default_to_finney():
    spec = importlib.util.spec_from_file_location("neuron_validator", REPO / "neurons" / "validator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.build_args(["--netuid", "3"]) == ["validator", "run", "--netuid", "3", "--network", "finney"]


def _validator_history(home: Path) -> Path:
    """Two rounds on the devchain, stored the way `validator run` stores them."""
    chain = DevChain(home / "devchain.sqlite", hotkey="v/default")
    chain.register(1, "v/default", validator_permit=True)
    for i, name in enumerate(("alice", "bob")):
        chain.register(1, name)
        chain.as_hotkey(name).commit(1, f"ghcr.io/acme/{name}-env@sha256:{i + 1:064x}".encode())
    store = open_subnet_store(home, chain.network_id(), "devchain", 1)
    settings = Settings(home=home, netuid=1, tasks=2)
    validator = Validator(chain, StandInRuntime(latency_s=0.001), EchoChallenge(), settings, store)
    for _ in range(2):
        chain.advance(3)
        aio.run(validator.run_round(plan_round(chain.commitments(1), lambda ref: str(ref)), b"seed"))
    path = store.path
    store.close()
    return path


def test_status_json_matches_the_store(home):
    path = _validator_history(home)
    result = invoke("validator", "status", "--json")
    assert result.exit_code == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["store"] == str(path) and status["network"] == "devchain" and status["netuid"] == 1
    assert [r["round"] for r in status["recent_rounds"]] == [2, 1]
    assert [(r["evaluated"], r["cached"]) for r in status["recent_rounds"]] == [(0, 2), (2, 0)]
    assert status["cache"] == {"evaluated": 2, "cached": 2}
    board = {m["hotkey"]: m for m in status["leaderboard"]["miners"]}
    assert set(board) == {"alice", "bob"} and all(m["cached"] for m in board.values())
    assert status["last_weights"]["status"] == "set"
    assert set(status["last_weights"]["weights"]) == {str(m["uid"]) for m in board.values()}
    assert status["spend_usd"] == 0


def test_status_without_state_says_so(home):
    result = invoke("validator", "status")
    assert result.exit_code == 0 and "no validator state" in result.stdout


def test_tables_fit_80_columns_and_keep_the_score():
    assert short_ref(LONG_REF) == "…epository-name/env@abababab" and len(short_ref(LONG_REF)) == 28
    assert short_ref("ghcr.io/acme/env:v1@sha256:" + "12" * 32) == "acme/env@12121212"
    assert short_ref("matrix-chain-numpy") == "matrix-chain-numpy"
    console = Console(width=80, record=True)
    miners = [{"uid": 12, "env": LONG_REF, "verified": 8, "tasks": 8, "latency_ms_p50": 123.4, "score": 0.987654,
               "weight": 0.5, "faults": {"timeout": 2, "wrong_answer": 1}, "cached": True}]
    console.print(leaderboard_table(miners, title="leaderboard"))
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    header = next(line for line in text.splitlines() if "uid" in line)
    assert "score" in header and "weight" in header
    assert "0.988" in text and "@abababab" in text


def test_a_validator_short_of_stake_is_refused_before_any_runtime_starts(home, monkeypatch):
    chain = DevChain(home / "devchain.sqlite")
    chain.set_param("min_stake", 1000)
    built = []
    monkeypatch.setattr("subnet.cli.validator.make_runtime", lambda *a, **k: built.append(a))
    result = invoke("validator", "run", "--network", "devchain", "--wallet.name", "validator", "--once")
    assert result.exit_code == 1 and built == []
    (line,) = [l for l in result.stderr.splitlines() if l.startswith("error")]
    assert line == ("error: not validating on netuid 1 (devchain) as validator/default: "
                    "stake 0 is below the minimum 1000 to set weights")


def test_basilica_mode_without_a_token_names_options_that_exist(home, monkeypatch):
    for name in ("BASILICA_API_TOKEN", "BASILICA_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    result = invoke("validator", "run", "--network", "devchain", "--wallet.name", "validator", "--mode", "basilica",
                    "--once")
    assert result.exit_code == 1
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("error")]
    assert line.startswith("error: Basilica mode needs an API token: set BASILICA_API_TOKEN")
    assert "--api-key" not in result.output  # `validator run` has no such option
    for option in re.findall(r"--[a-z][a-z.-]+", result.output):
        assert option in invoke("validator", "run", "--help").output
