"""`subnet miner commit` and the Bittensor-convention neuron entry points."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from subnet.chain.base import RawCommitment
from subnet.chain.commitments import scan_commitments
from subnet.chain.devchain import DevChain
from subnet.state.first_seen import FirstSeenStore
from subnet.cli import miner_chain  # noqa: F401  (registers `commit` on the miner group)
from subnet.cli.miner_group import miner_app

from .conftest import DIGEST_A

REPO = Path(__file__).resolve().parents[2]
REF = f"ghcr.io/acme/matrix-miner:v1@{DIGEST_A}"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SUBNET_HOME", str(tmp_path))
    monkeypatch.delenv("SUBNET_NETWORK", raising=False)
    monkeypatch.delenv("SUBNET_NETUID", raising=False)
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(miner_app, list(args))


def test_dry_run_json_prints_exactly_what_would_be_committed(home):
    result = invoke("commit", REF, "--netuid", "5", "--network", "finney", "--wallet.name", "nowhere", "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    assert result.stdout == json.dumps({"netuid": 5, "network": "finney", "data": REF, "bytes": 100}) + "\n"
    assert len(REF.encode()) == 100
    assert result.stderr == ""
    assert not (home / "devchain.sqlite").exists()  # no chain touched


def test_dry_run_defaults_come_from_settings(home, monkeypatch):
    monkeypatch.setenv("SUBNET_NETUID", "12")
    result = invoke("commit", REF, "--dry-run", "--json")
    assert json.loads(result.stdout) == {"netuid": 12, "network": "devchain", "data": REF, "bytes": 100}


@pytest.mark.parametrize(
    "ref,says",
    [
        ("ghcr.io/acme/m:latest", "no digest"),
        (f"ghcr.io/acme/m@{DIGEST_A};rm -rf /", "forbidden characters"),
        (f"ghcr.io/acme/m@sha256:{'A' * 64}", "not sha256:<64 lowercase hex>"),
        ("r.io/" + "a" * 120 + f"@{DIGEST_A}", "at most 128"),
        (f"ghcr.io/\u0430cme/m@{DIGEST_A}", "not ASCII"),
    ],
)
def test_a_bad_reference_exits_nonzero_with_one_line_saying_why(home, ref, says):
    result = invoke("commit", ref, "--dry-run", "--json")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid image reference:") and says in lines[0]


def test_devchain_commit_registers_the_miner_and_the_validator_reads_it_back(home):
    first = invoke("commit", REF, "--netuid", "3", "--network", "devchain", "--wallet.name", "alice", "--wallet.hotkey", "hk1", "--json", "--no-verify")
    assert first.exit_code == 0, first.output
    assert first.stderr == "devchain: registered alice/hk1 as uid 1 on netuid 3\n"  # uid 0: the owner
    out = json.loads(first.stdout)
    assert out["hotkey"] == "alice/hk1" and out["data"] == REF and out["bytes"] == 100

    # A second miner copies the digest under another name; registering again is silent.
    copier = f"docker.io/bob/stolen@{DIGEST_A}"
    second = invoke("commit", copier, "--netuid", "3", "--network", "devchain", "--wallet.name", "bob", "--json", "--no-verify")
    assert second.exit_code == 0 and "bob/default as uid 2" in second.stderr
    again = invoke("commit", REF, "--netuid", "3", "--network", "devchain", "--wallet.name", "alice", "--wallet.hotkey", "hk1",
                   "--no-verify")
    assert again.exit_code == 0 and again.stderr == "" and "committed" in again.stdout

    chain = DevChain(home / "devchain.sqlite")
    raws = chain.commitments(3)
    assert raws[0] == RawCommitment("bob/default", 2, out["block"] + 2, copier.encode())
    assert {(c.hotkey, c.uid, c.data) for c in raws} == {("alice/hk1", 1, REF.encode()), ("bob/default", 2, copier.encode())}

    # The validator's first scan sees alice's latest block (after bob's), so without memory bob
    # would own the digest — the first-seen store written by an earlier scan prevents that.
    store = FirstSeenStore(home / "state.sqlite")
    store.claim(DIGEST_A, "alice/hk1", out["block"])
    scan = scan_commitments(raws, store)
    assert [c.hotkey for c in scan.accepted] == ["alice/hk1"]
    assert [(c.hotkey, c.owner_hotkey) for c in scan.copies] == [("bob/default", "alice/hk1")]


def test_an_unknown_network_is_a_one_line_error(home):
    result = invoke("commit", REF, "--network", "mainnet")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: unknown network 'mainnet': use devchain, finney, test, local, archive, devnet or a ws:// URL"
    ]


def test_a_missing_wallet_is_a_one_line_error_without_touching_the_network(home, tmp_path):
    result = invoke("commit", REF, "--network", "ws://127.0.0.1:1", "--wallet.name", "ghost", "--wallet.path", str(tmp_path / "w"))
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: wallet ghost/default has no readable hotkey")


# -- neurons/ entry points --------------------------------------------------------------------
def load_neuron(name: str):
    spec = importlib.util.spec_from_file_location(f"neuron_{name}", REPO / "neurons" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_validator_flags_translate_to_subnet_validator_run():
    validator = load_neuron("validator")
    args = validator.build_args(
        ["--netuid", "7", "--subtensor.network", "test", "--wallet.name", "v", "--wallet.hotkey", "h",
         "--wallet.path", "/keys", "--logging.debug", "--rounds", "1"]
    )
    assert args == ["validator", "run", "--netuid", "7", "--network", "test", "--wallet.name", "v",
                    "--wallet.hotkey", "h", "--wallet.path", "/keys", "--rounds", "1"]
    endpoint = validator.build_args(["--subtensor.network", "finney", "--subtensor.chain_endpoint", "ws://10.0.0.2:9944"])
    assert endpoint == ["validator", "run", "--network", "ws://10.0.0.2:9944"]


def test_miner_script_commits_through_the_subnet_cli(home):
    env = {**os.environ, "SUBNET_HOME": str(home), "BTCLI_TOKEN_SYMBOLS_CACHE": str(home / "sym.json")}
    proc = subprocess.run(
        [sys.executable, str(REPO / "neurons" / "miner.py"), "--image", REF, "--netuid", "4",
         "--subtensor.network", "finney", "--wallet.name", "m", "--dry-run", "--json"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"netuid": 4, "network": "finney", "data": REF, "bytes": 100}
    bad = subprocess.run(
        [sys.executable, str(REPO / "neurons" / "miner.py"), "--image", "ghcr.io/acme/m:latest", "--dry-run"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: invalid image reference: no digest")


# -- commit verifies the reference in its registry (in-process transport: no sockets) ----------
LOOPBACK_REF = f"127.0.0.1:5000/acme/matrix-miner@{DIGEST_A}"
def _registry(monkeypatch, status: int = 200, label: str | None = None):
    import httpx

    from subnet.cli import miner_chain as module
    from subnet.registry.client import LABEL_HOTKEY, RegistryClient

    config_digest = "sha256:" + "9" * 64

    def handle(request: httpx.Request) -> httpx.Response:
        if status != 200:
            return httpx.Response(status)
        if "/manifests/" in request.url.path:
            return httpx.Response(200, json={"config": {"digest": config_digest}})
        return httpx.Response(200, json={"config": {"Labels": {LABEL_HOTKEY: label} if label else {}}})

    monkeypatch.setattr(module, "registry_client", lambda: RegistryClient(httpx.AsyncClient(transport=httpx.MockTransport(handle))))


@pytest.mark.parametrize(
    "status, label, message",
    [
        (404, None, "manifest unknown"),
        (503, None, "cannot verify"),
        (200, "someone/else", "labelled for hotkey someone/else, not alice/default"),
    ],
)
def test_commit_refuses_what_validators_could_not_run_or_would_call_a_copy(home, monkeypatch, status, label, message):
    _registry(monkeypatch, status, label)
    result = invoke("commit", LOOPBACK_REF, "--network", "devchain", "--wallet.name", "alice")
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: not committed:") and message in line
    assert DevChain(home / "devchain.sqlite").commitments(1) == []


def test_commit_goes_ahead_when_the_registry_has_the_image_with_the_right_label(home, monkeypatch):
    _registry(monkeypatch, 200, "alice/default")
    result = invoke("commit", LOOPBACK_REF, "--network", "devchain", "--wallet.name", "alice", "--json")
    assert result.exit_code == 0, result.stderr
    assert [c.data.decode() for c in DevChain(home / "devchain.sqlite").commitments(1)] == [LOOPBACK_REF]


def test_no_verify_skips_the_registry(home, monkeypatch):
    _registry(monkeypatch, 404)
    result = invoke("commit", LOOPBACK_REF, "--network", "devchain", "--wallet.name", "alice", "--no-verify")
    assert result.exit_code == 0, result.stderr


def test_on_the_devchain_only_registries_on_this_machine_are_asked(home, monkeypatch):
    _registry(monkeypatch, 404)  # would refuse, if it were asked
    result = invoke("commit", REF, "--network", "devchain", "--wallet.name", "alice")
    assert result.exit_code == 0, result.stderr


def test_on_a_real_network_any_registry_is_asked(monkeypatch):
    from subnet.cli import miner_chain as module

    _registry(monkeypatch, 404)
    with pytest.raises(Exception) as failed:  # typer.Exit after the one-line error
        module.verify_in_registry(REF, "5Me", local_chain=False)
    assert getattr(failed.value, "exit_code", None) == 1


def test_a_local_reference_is_refused_on_a_real_network(capsys):
    import typer

    from subnet.cli.miner_chain import verify_in_registry

    with pytest.raises(typer.Exit) as refused:
        verify_in_registry(f"local.invalid/my-env:dev@{DIGEST_A}", "5Hotkey", local_chain=False)
    assert refused.value.exit_code == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert "exists only on this machine" in line and "subnet miner push IMAGE --repo" in line
