"""What an operator gets wrong gets one line and a non-zero exit, never a traceback: a read-only or
odd SUBNET_HOME, a `--env` that is not a folder, a subnet uid out of range, a round that fails."""

from __future__ import annotations

import logging
import os
import subprocess

import pytest
from typer.testing import CliRunner

from subnet.cli import _register, app
from subnet.twins.standin import StandInRuntime


@pytest.fixture(autouse=True)
def open_log_streams():
    """Another test's `validator run` may have left the root logger on a stream CliRunner closed; a
    late record (asyncio's) would print "Logging error" into this test's output: drop such handlers."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = [h for h in saved if not getattr(getattr(h, "stream", None), "closed", False)]
    yield
    root.handlers[:] = saved


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("SUBNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SUBNET_NETUID", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setattr("subnet.cli.validator.make_runtime", lambda *a, **k: StandInRuntime(0.001))
    monkeypatch.setattr("subnet.cli.validator.fit_refusal", lambda *a, **k: "")  # a Docker host's check
    _register()
    return tmp_path / "home"


def invoke(*args: str):
    root = logging.getLogger()
    saved = root.handlers[:]
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        root.handlers[:] = saved  # `validator run` points logging at a stream CliRunner then closes


def one_error_line(result, code: int, tracebacks: int = 0) -> str:
    """The one `error:` line, last on stderr (notes such as "registered … on the devchain" may come first)."""
    assert result.exit_code == code, result.output
    assert result.output.count("Traceback") == tracebacks and not isinstance(result.exception, (RuntimeError, OSError))
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert [ln for ln in lines if ln.startswith("error: ")] == lines[-1:]
    return lines[-1]


@pytest.fixture
def read_only_home(tmp_path, unavailable, monkeypatch):
    mount = tmp_path / "ro"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        unavailable(f"cannot mount a read-only tmpfs here: {done.stderr.strip()}")
    monkeypatch.setenv("SUBNET_HOME", str(mount))
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_read_only_home_is_one_line(home, read_only_home):
    line = one_error_line(invoke("validator", "run", "--network", "devchain", "--once"), 1)
    assert line == f"error: cannot use SUBNET_HOME {read_only_home}: Read-only file system: {read_only_home}/validator.lock"
    ref = f"127.0.0.1:5000/a/b@sha256:{'a' * 64}"
    line = one_error_line(invoke("miner", "commit", ref, "--network", "devchain", "--no-verify"), 1)
    assert str(read_only_home / "devchain.sqlite") in line


def test_a_round_secret_that_is_a_folder_is_one_line(home):
    (home / "round-secret").mkdir(parents=True)
    line = one_error_line(invoke("validator", "run", "--network", "devchain", "--once"), 1)
    assert line == f"error: cannot use the round secret {home / 'round-secret'}: Is a directory"


def test_a_round_that_fails_unexpectedly_is_one_line_with_once(home, monkeypatch):
    async def broken(self):
        raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")

    monkeypatch.setattr("subnet.validator.loop.ValidatorLoop.run_once", broken)
    # The log keeps the traceback (once: it is a validator bug to report); the command says one line.
    line = one_error_line(invoke("validator", "run", "--network", "devchain", "--once"), 1, tracebacks=1)
    assert line == "error: round abandoned: validator error: RecursionError: maximum recursion depth exceeded while decoding a JSON array"


@pytest.mark.parametrize("make, why", [
    (lambda tmp: tmp / "no" / "such" / "dir", "no such folder"),
    (lambda tmp: _loop(tmp), "a symlink loop"),
    (lambda tmp: _file(tmp), "not a folder"),
])
def test_a_dry_run_env_that_is_not_a_folder_is_one_line(home, tmp_path, make, why):
    path = make(tmp_path)
    line = one_error_line(invoke("dry-run", "--env", str(path), "--mode", "process"), 2)
    assert line == f"error: --env {path}: {why}"


def _loop(tmp):
    os.symlink(tmp / "b", tmp / "a")
    os.symlink(tmp / "a", tmp / "b")
    return tmp / "a"


def _file(tmp):
    (tmp / "env.py").write_text("class Actor: ...\n")
    return tmp / "env.py"


@pytest.mark.parametrize("command", [("validator", "run"), ("validator", "status"), ("miner", "commit", "x@sha256:" + "a" * 64)])
@pytest.mark.parametrize("netuid", ["-1", "65536", "99999"])
def test_netuid_is_a_u16_everywhere(home, command, netuid):
    result = invoke(*command, "--netuid", netuid, "--network", "devchain")
    assert result.exit_code == 2 and "--netuid" in result.output and "Traceback" not in result.output


def test_netuid_from_the_environment_is_checked_too(home, monkeypatch, capsys):
    from subnet.cli import main

    monkeypatch.setenv("SUBNET_NETUID", "70000")
    with pytest.raises(SystemExit) as exit_:
        main(["validator", "status"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "error: invalid settings: SUBNET_NETUID='70000': Input should be less than or equal to 65535")


def test_the_neuron_flags_check_netuid(capsys):
    import argparse

    from subnet.cli.neuron_flags import add_bittensor_flags

    parser = add_bittensor_flags(argparse.ArgumentParser())
    assert parser.parse_args(["--netuid", "65535"]).netuid == 65535
    with pytest.raises(SystemExit):
        parser.parse_args(["--netuid", "-1"])
    assert "-1 is not a subnet uid (0 to 65535)" in capsys.readouterr().err
