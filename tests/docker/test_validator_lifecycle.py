"""The long-running validator (`subnet validator run`, a real process on the devchain, Docker mode)
stopped, killed and crowded from outside. Each test asserts nothing leaked (no container or network
of that validator's identity), no round lost or counted twice, and one clear line.

A second validator runs under its own UTS namespace with another host name, as one in a container
on the same daemon would; PID 1 is a real PID 1 of a PID namespace (`unshare`), as in an image
started without an init.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from subnet.chain.devchain import DevChain
from subnet.state.identity import validator_identity
from docker_support import owned_by

pytestmark = pytest.mark.docker

NETUID = 1
VALIDATOR = "validator/default"
TASKS = 4


def prepare(home: Path, miner_ref: str) -> str:
    """A devchain with this validator and one miner committing `miner_ref`; returns the identity."""
    chain = DevChain(home / "devchain.sqlite", hotkey=VALIDATOR)
    chain.register(NETUID, VALIDATOR, validator_permit=True)
    chain.register(NETUID, "miner/default")
    chain.as_hotkey("miner/default").commit(NETUID, miner_ref.encode())
    chain.close()
    return validator_identity(home)


def start(home: Path, *extra: str, prefix: tuple[str, ...] = (), once: bool = False, **env: str) -> subprocess.Popen:
    variables = {**os.environ, "SUBNET_HOME": str(home), "SUBNET_TASKS": str(TASKS), "SUBNET_PER_MINER": "1",
                 "SUBNET_N": "64", "SUBNET_DEPTH": "2", "SUBNET_START_TIMEOUT": "60", "SUBNET_STOP_GRACE": "20",
                 **env}
    argv = [*prefix, sys.executable, "-m", "subnet", "validator", "run", "--network", "devchain",
            "--wallet.name", "validator", "--mode", "docker", "--json", "--interval", "1",
            *(["--once"] if once else []), *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=variables)


def kill(proc: subprocess.Popen) -> str:
    """SIGKILL the validator (and, under `unshare --fork`, its PID 1 first); returns its stderr."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    for child in (children.read_text().split() if children.exists() else []):
        os.kill(int(child), signal.SIGKILL)
    proc.kill()
    return proc.communicate()[1]


def finish(proc: subprocess.Popen, timeout: float = 90) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"validator did not exit within {timeout}s:\n{kill(proc)[-3000:]}")
    return proc.returncode, out, err


def wait_for(what: str, predicate, proc: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            pytest.fail(f"validator exited ({proc.returncode}) before {what}:\n{proc.stderr.read()[-3000:]}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}:\n{kill(proc)[-3000:]}")


def running_actor(docker_client, identity: str):
    containers, _ = owned_by(docker_client, identity)
    return next((c for c in containers if c.status == "running"), None)


def calls_begun(docker_client, identity: str) -> bool:
    import docker.errors

    actor = running_actor(docker_client, identity)
    try:
        return actor is not None and b"slow-env: evaluating" in actor.logs()
    except docker.errors.APIError:  # removed (or being removed) between the listing and the read
        return False


def rounds(home: Path) -> list[tuple[int, int, str | None, bool]]:
    """(id, task results stored, abandoned reason, has an end) per round."""
    (path,) = (home / "subnets").glob("*/netuid-*.sqlite")  # the one subnet these tests run
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT r.id, (SELECT COUNT(*) FROM task_results t WHERE t.round_id = r.id), "
                          "r.abandoned, r.finished_at IS NOT NULL FROM rounds r ORDER BY r.id").fetchall()
    finally:
        db.close()


def last_line(err: str) -> str:
    return err.strip().splitlines()[-1]


def reports(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def assert_nothing_left(docker_client, identity: str) -> None:
    assert owned_by(docker_client, identity) == ([], []), "leaked Actor containers or networks"


def pid1_of(unshare: subprocess.Popen) -> int:
    """The host PID of the process `unshare --fork` runs as PID 1 of its namespace."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.05)
    pytest.fail("unshare started no child")


def test_sigterm_during_start_removes_everything_and_marks_the_round(docker_client, tmp_path, wrong_port_ref):
    identity = prepare(tmp_path, wrong_port_ref)  # never healthy: the start phase lasts 60 s
    proc = start(tmp_path)
    wait_for("the Actor container", lambda: running_actor(docker_client, identity) is not None, proc)
    proc.send_signal(signal.SIGTERM)
    code, _, err = finish(proc, timeout=40)
    assert code == 0, err[-2000:]
    assert last_line(err) == "stopped by SIGTERM: round 1 abandoned, every Actor removed"
    assert_nothing_left(docker_client, identity)
    assert rounds(tmp_path) == [(1, 0, "stopped by SIGTERM", True)]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_during_calls_as_pid_1(docker_client, tmp_path, slow_honest_ref, sig):
    identity = prepare(tmp_path, slow_honest_ref)
    proc = start(tmp_path, prefix=("unshare", "--pid", "--fork", "--mount-proc"))
    wait_for("the first call", lambda: calls_begun(docker_client, identity), proc)
    os.kill(pid1_of(proc), sig)  # what `docker stop` does to an image's PID 1
    code, _, err = finish(proc, timeout=40)
    assert code == 0, err[-2000:]
    assert last_line(err) == f"stopped by {sig.name}: round 1 abandoned, every Actor removed"
    assert "Traceback" not in err
    assert_nothing_left(docker_client, identity)
    assert rounds(tmp_path) == [(1, 0, f"stopped by {sig.name}", True)]


def test_sigterm_during_weight_setting_keeps_the_round(docker_client, tmp_path, slow_honest_ref):
    identity = prepare(tmp_path, slow_honest_ref)
    proc = start(tmp_path)
    wait_for("the first call", lambda: calls_begun(docker_client, identity), proc)
    chain_lock = sqlite3.connect(tmp_path / "devchain.sqlite", isolation_level=None)
    chain_lock.execute("BEGIN IMMEDIATE")  # the chain is slow to take the weights: set_weights waits
    try:
        wait_for("the round's results", lambda: any(r[3] for r in rounds(tmp_path)), proc)
        time.sleep(0.5)  # now inside set_weights
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
    finally:
        chain_lock.execute("ROLLBACK")
        chain_lock.close()
    code, _, err = finish(proc, timeout=40)
    assert code == 0, err[-2000:]
    assert last_line(err) == "stopped by SIGTERM: no round left unfinished, every Actor removed"
    assert_nothing_left(docker_client, identity)
    assert rounds(tmp_path) == [(1, TASKS, None, True)]  # the round's results stand, nothing abandoned


def test_sigkill_then_immediate_restart_reclaims_within_one_round(docker_client, tmp_path, slow_honest_ref):
    identity = prepare(tmp_path, slow_honest_ref)
    first = start(tmp_path)
    wait_for("the first call", lambda: calls_begun(docker_client, identity), first)
    orphan = running_actor(docker_client, identity)
    first.kill()
    first.communicate()
    restarted = start(tmp_path, once=True)  # at once: the dead run's lease still looks fresh
    code, out, err = finish(restarted, timeout=120)
    assert code == 0, err[-2000:]
    assert "reaped 1 Actor container(s) and 1 network(s) left by dead run(s)" in err, err[-3000:]
    with pytest.raises(Exception):
        orphan.reload()  # gone
    [report] = reports(out)
    assert report["miners"][0]["verified"] == TASKS
    assert_nothing_left(docker_client, identity)
    # The killed round is marked, not counted; the new one is stored once.
    assert rounds(tmp_path) == [(1, 0, "the validator stopped mid-round (crash or kill)", True), (2, TASKS, None, True)]


def test_a_second_validator_on_the_daemon_leaves_the_first_ones_actors_alone(
    docker_client, tmp_path, slow_honest_ref, reference_image
):
    home_a, home_b = tmp_path / "a", tmp_path / "b"
    identity_a = prepare(home_a, slow_honest_ref)
    identity_b = prepare(home_b, reference_image.reference)
    # A's round lasts long enough (16 calls of 1.5 s, one at a time) that B's whole run, start-up
    # reaping included, fits inside it even on a loaded machine.
    tasks_a = 16
    first = start(home_a, once=True, SUBNET_TASKS=str(tasks_a))
    wait_for("validator A's first call", lambda: calls_begun(docker_client, identity_a), first)
    actor_a = running_actor(docker_client, identity_a)
    # Validator B starts while A's round runs, under another host name (as in a container).
    second = start(home_b, once=True, prefix=("unshare", "--uts", "sh", "-c", 'hostname validator-b && exec "$@"', "sh"))
    code_b, out_b, err_b = finish(second)
    assert code_b == 0, err_b[-2000:]
    assert first.poll() is None, "A's round ended before B's: this test's premise failed (machine too slow?)"
    actor_a.reload()
    assert actor_a.status == "running", err_b[-2000:]  # B's start-up reaping did not touch it
    code_a, out_a, err_a = finish(first)
    assert code_a == 0, err_a[-2000:]
    [report_a], [report_b] = reports(out_a), reports(out_b)
    miner_a = report_a["miners"][0]
    assert miner_a["verified"] == tasks_a and miner_a["faults"] == {}, miner_a  # not charged
    # B ran a round of its own (how its miner fared is not this test's point: until every
    # validator on a shared daemon labels by identity, an older one may reap B's Actor).
    assert [m["hotkey"] for m in report_b["miners"]] == ["miner/default"]
    assert_nothing_left(docker_client, identity_a)
    assert_nothing_left(docker_client, identity_b)


def test_once_with_a_state_file_locked_by_another_process_says_so_and_exits_1(docker_client, tmp_path, slow_honest_ref):
    identity = prepare(tmp_path, slow_honest_ref)
    proc = start(tmp_path, once=True, SUBNET_STATE_BUSY_TIMEOUT="0.2")
    wait_for("the first call", lambda: calls_begun(docker_client, identity), proc)
    (state,) = (tmp_path / "subnets").glob("*/netuid-*.sqlite")  # this subnet's state file
    other = sqlite3.connect(state, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock until this one is done
    try:
        code, out, err = finish(proc, timeout=120)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert code == 1, err[-2000:]
    assert last_line(err) == f"error: results of round(s) 1 could not be written to {state} (see the log line above)"
    assert f"state file {state} is locked by another process" in err
    assert reports(out)[0]["miners"][0]["verified"] == TASKS  # the round itself was done and reported
    assert_nothing_left(docker_client, identity)
