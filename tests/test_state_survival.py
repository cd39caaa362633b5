"""State-file faults injected into a real validator round (stand-in Actors, the embedded devchain,
the real SQLite store): a locked, full or damaged file is one clear line naming the file, the
validator keeps going, and no round's results are lost or counted twice. Also: one process per
SUBNET_HOME, fresh tasks every round, abandoned rounds marked."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from subnet.util import aio
from subnet.chain.devchain import SUBNET_OWNER, DevChain
from subnet.config import Settings
from subnet.state.home_lock import HomeBusy, HomeLock
from subnet.twins.standin import EchoChallenge, StandInRuntime
from subnet.state.db import StateError, check_integrity, describe, retrying
from subnet.state.store import Store
from subnet.validator.service import Validator, plan_round

NETUID = 1
DIGEST = "sha256:" + "e" * 64


class RecordingChallenge(EchoChallenge):
    def __init__(self) -> None:
        self.seeds: list[list[int]] = []

    def make_tasks(self, round_seed: bytes, count: int):
        tasks = super().make_tasks(round_seed, count)
        self.seeds.append([t.seed for t in tasks])
        return tasks


def make_validator(home: Path, store: Store, runtime=None):
    chain = DevChain(home / "devchain.sqlite", hotkey="validator")
    chain.register(NETUID, "validator", validator_permit=True)
    chain.register(NETUID, "miner")
    chain.as_hotkey("miner").commit(NETUID, f"ghcr.io/m/env@{DIGEST}".encode())
    # Every round evaluates anew (no cache): these tests are about what each round writes.
    settings = Settings(_env_file=None, home=home, netuid=NETUID, tasks=3, call_timeout=5, reeval_interval=0)
    challenge = RecordingChallenge()
    validator = Validator(chain, runtime or StandInRuntime(0.001), challenge, settings, store)
    plan = plan_round(chain.commitments(NETUID), lambda ref: str(ref))
    return validator, plan, challenge


def stored_rounds(path: Path) -> list[tuple[int, int, str | None]]:
    """(round id, task results stored, abandoned reason) for every round that has an end."""
    db = sqlite3.connect(path)
    try:
        return db.execute(
            "SELECT r.id, (SELECT COUNT(*) FROM task_results t WHERE t.round_id = r.id), r.abandoned "
            "FROM rounds r WHERE r.finished_at IS NOT NULL ORDER BY r.id").fetchall()
    finally:
        db.close()


@contextlib.contextmanager
def write_locked(path: Path):
    """Another process's view of the file: a connection holding the write lock."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield holder
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_same_block_twice_gives_different_tasks(tmp_path):
    store = Store(tmp_path / "state.sqlite")
    validator, plan, challenge = make_validator(tmp_path, store)
    same_seed = b"block 1000 did not advance"
    aio.run(validator.run_round(plan, same_seed))
    aio.run(validator.run_round(plan, same_seed))
    first, second = challenge.seeds
    assert len(first) == 3 and not set(first) & set(second)
    assert [r[0] for r in stored_rounds(store.path)] == [1, 2]  # the round number is kept in the state


def test_locked_database_is_retried_and_the_round_is_written(tmp_path):
    store = Store(tmp_path / "state.sqlite", busy_timeout=0.05)
    validator, plan, _ = make_validator(tmp_path, store)
    holder = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(0.6, lambda: holder.execute("ROLLBACK")).start()  # released during the backoff
    report = aio.run(validator.run_round(plan, b"s"))
    holder.close()
    assert report.miners[0].verified == 3
    assert stored_rounds(store.path) == [(1, 3, None)]


def test_write_failure_keeps_results_and_writes_them_next_round(tmp_path, caplog, monkeypatch):
    store = Store(tmp_path / "state.sqlite", busy_timeout=0.01)
    validator, plan, _ = make_validator(tmp_path, store)

    runtime = StandInRuntime(0.001)
    validator.runtime = runtime
    original_open = runtime.open
    holder = sqlite3.connect(store.path, isolation_level=None)  # another process

    @contextlib.asynccontextmanager
    async def open_and_lock(sub):
        # The other process takes the write lock once the round has begun, and keeps it.
        holder.execute("BEGIN IMMEDIATE")
        async with original_open(sub) as session:
            yield session

    runtime.open = open_and_lock
    monkeypatch.setattr("subnet.state.db.FIRST_BACKOFF_S", 0.01)
    with caplog.at_level("WARNING"):
        first = aio.run(validator.run_round(plan, b"s"))
    assert first.miners[0].verified == 3  # the round's work stands; weights were still set
    assert "is locked by another process" in caplog.text and str(store.path) in caplog.text
    assert validator.results.unwritten_rounds == [1]
    assert stored_rounds(store.path) == []
    holder.execute("ROLLBACK")  # the other process lets go
    runtime.open = original_open
    aio.run(validator.run_round(plan, b"s"))
    assert stored_rounds(store.path) == [(1, 3, None), (2, 3, None)]  # nothing lost, nothing doubled
    assert validator.results.unwritten_rounds == []
    assert set(store.smoothed_scores()) == {"miner", SUBNET_OWNER}  # the idle owner decays at 0
    holder.close()


@pytest.fixture
def tiny_disk(tmp_path, unavailable):
    """A 512 KiB tmpfs. Mounting needs root (CI runs as root); elsewhere this skips, and
    SUBNET_REQUIRE_DOCKER=1 (set by CI) turns that skip into a failure, as for Docker."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb") as out:
        with contextlib.suppress(OSError):
            while True:
                out.write(b"\0" * 65536)
                out.flush()
    return filler


def test_full_disk_says_disk_full_with_the_path_and_loses_no_round(tiny_disk, caplog):
    store = Store(tiny_disk / "state.sqlite", busy_timeout=0.01)
    validator, plan, _ = make_validator(tiny_disk.parent, store)
    aio.run(validator.run_round(plan, b"s"))
    runtime = validator.runtime
    original_open = runtime.open
    filled: list[Path] = []

    @contextlib.asynccontextmanager
    async def open_then_fill(sub):
        # The WAL is emptied first, so the round's writes need new space and cannot reuse old frames.
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        filled.append(fill(tiny_disk))  # the disk fills up while the round runs, after it began
        async with original_open(sub) as session:
            yield session

    runtime.open = open_then_fill
    with caplog.at_level("WARNING"):
        second = aio.run(validator.run_round(plan, b"s"))
    assert second.miners[0].verified == 3
    assert f"disk full: cannot write the state file {store.path}" in caplog.text
    assert validator.results.unwritten_rounds == [2]
    runtime.open = original_open
    filled[0].unlink()  # space is freed
    aio.run(validator.run_round(plan, b"s"))
    assert stored_rounds(store.path) == [(1, 3, None), (2, 3, None), (3, 3, None)]


def test_abandoned_round_is_marked_never_counted(tmp_path):
    store = Store(tmp_path / "state.sqlite")
    validator, plan, _ = make_validator(tmp_path, store, StandInRuntime(hang_for=frozenset({f"ghcr.io/m/env@{DIGEST}"})))

    async def cancelled_mid_round():
        task = asyncio.ensure_future(validator.run_round(plan, b"s"))
        await asyncio.sleep(0.3)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    aio.run(cancelled_mid_round())
    assert validator.runtime.open_now == 0  # its Actor was torn down
    assert store.abandon_unfinished("stopped by SIGTERM") == [1]
    assert stored_rounds(store.path) == [(1, 0, "stopped by SIGTERM")]
    assert store.smoothed_scores() == {}  # nothing of it was counted
    assert store.abandon_unfinished("again") == []  # marked once


def test_damaged_file_is_named_with_what_to_do(tmp_path):
    path = tmp_path / "state.sqlite"
    Store(path).close()
    with open(path, "r+b") as fh:  # a truncated, overwritten file
        fh.seek(100)
        fh.write(b"\xde\xad" * 2000)
        fh.truncate(3000)
    with pytest.raises(StateError) as caught:
        check_integrity(path)
    assert caught.value.kind == "damaged"
    assert str(path) in str(caught.value) and f"mv {path} {path}.damaged" in str(caught.value)
    path.write_bytes(b"this is not a database at all" * 10)
    with pytest.raises(StateError, match="is damaged"):
        check_integrity(path)


def test_errors_are_classified_one_line():
    path = Path("/state/state.sqlite")
    assert describe(sqlite3.OperationalError("database is locked"), path).kind == "busy"
    assert describe(sqlite3.OperationalError("database or disk is full"), path).kind == "full"
    assert describe(sqlite3.DatabaseError("database disk image is malformed"), path).kind == "damaged"
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database is locked")
        return "ok"

    assert retrying(path, flaky, sleep=lambda _s: None) == "ok" and len(calls) == 3
    with pytest.raises(StateError, match="disk full"):
        retrying(path, lambda: (_ for _ in ()).throw(sqlite3.OperationalError("database or disk is full")))


def cli(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "SUBNET_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "subnet", "validator", "run", "--network", "devchain",
                           "--mode", "docker", *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_second_process_on_one_home_is_refused_with_exit_2(tmp_path):
    with HomeLock(tmp_path):
        with pytest.raises(HomeBusy, match=f"pid {os.getpid()}"):
            HomeLock(tmp_path).acquire()
        refused = cli(tmp_path, "--once")
    assert refused.returncode == 2
    assert f"in use by another validator (pid {os.getpid()}" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    HomeLock(tmp_path).acquire().release()  # released with its holder


def test_cli_names_a_damaged_state_file_and_exits_1(tmp_path):
    (tmp_path / "state.sqlite").write_bytes(b"garbage, not SQLite " * 100)
    ran = cli(tmp_path, "--once")
    assert ran.returncode == 1
    assert str(tmp_path / "state.sqlite") in ran.stderr and "is damaged" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_the_loop_skips_a_round_it_cannot_open_and_keeps_going(tmp_path, caplog, monkeypatch):
    """The state file is locked by another process when a round should begin: one line, a short
    backoff, and the next round runs; nothing had been done, so nothing is lost."""
    from subnet.state.first_seen import FirstSeenStore
    from subnet.validator.loop import ValidatorLoop

    monkeypatch.setattr("subnet.state.db.FIRST_BACKOFF_S", 0.01)
    store = Store(tmp_path / "state.sqlite", busy_timeout=0.01)
    validator, _plan, _ = make_validator(tmp_path, store)
    vloop = ValidatorLoop(validator.chain, StandInRuntime(0.001), validator.settings, store,
                          FirstSeenStore(tmp_path / "first-seen.sqlite"))
    holder = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")

    async def backoff_then_release(seconds):
        if holder.in_transaction:
            holder.execute("ROLLBACK")  # the other process lets go during the backoff

    vloop.sleep = backoff_then_release
    reports = []

    class Done(Exception):
        pass

    def on_report(report):
        reports.append(report)
        raise Done

    with caplog.at_level("WARNING"), pytest.raises(Done):
        aio.run(vloop.run_forever(1, on_report))
    holder.close()
    assert "round skipped: state file" in caplog.text and "is locked by another process" in caplog.text
    assert len(reports) == 1 and stored_rounds(store.path) == [(1, 3, None)]
