"""SIGTERM in the middle of a Basilica round (the real SDK against the local Basilica twin): the
deployments are deleted through the runtime's shielded teardown, the spend ledger says so, the
round is marked abandoned, and `serve` returns one line. Plus the liveness lease on its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import threading
import time

import pytest


from subnet.util import aio
from subnet.chain.devchain import DevChain
from subnet.state.first_seen import FirstSeenStore
from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.deployment_client import DeploymentClient
from subnet.compute.ledger import Ledger
from subnet.compute.settings import load_settings
from subnet.config import Settings
from subnet.state.lease import Lease, drop_stale_leases, read_lease, run_is_alive
from subnet.runtime.basilica import BasilicaRuntime
from subnet.runtime.process import ProcessRuntime
from subnet.state.store import Store
from subnet.twins.basilica_twin import BasilicaTwin, offering
from subnet.twins.deployment_host import ActorHost
from subnet.validator.loop import ValidatorLoop
from subnet.validator.shutdown import STATE_WAIT_S, serve

from envs_factory import make_env

TOKEN = "twin-token-for-signals"
IMAGE = "docker.io/miner/env@sha256:" + "ab" * 32


def test_sigterm_mid_round_deletes_every_basilica_deployment(tmp_path, monkeypatch):
    slow = make_env(tmp_path / "envs", "slow")  # 0.6 s per answer, run for real by the twin's deployment
    host = ActorHost(ProcessRuntime(start_timeout=60), resolve={IMAGE: str(slow)}.__getitem__)
    with BasilicaTwin(token=TOKEN, offerings=[offering("v100", "TESLA V100", "0.05", is_spot=True)],
                      actor_host=host) as twin:
        monkeypatch.setenv("BASILICA_API_URL", twin.url)
        monkeypatch.setenv("BASILICA_API_TOKEN", TOKEN)
        monkeypatch.setenv("BASILICA_BACKOFF", "0.01")
        monkeypatch.setenv("BASILICA_REQUESTS_PER_MINUTE", "0")
        monkeypatch.chdir(tmp_path)
        settings = Settings(_env_file=None, home=tmp_path, tasks=8, per_miner=1, n=64, depth=2, call_timeout=20)
        chain = DevChain(tmp_path / "devchain.sqlite", hotkey="validator")
        chain.register(settings.netuid, "validator", validator_permit=True)
        chain.register(settings.netuid, "miner")
        chain.as_hotkey("miner").commit(settings.netuid, IMAGE.encode())
        ledger = Ledger(settings.ledger_path)
        runtime = BasilicaRuntime(DeploymentClient(BasilicaGPUClient(load_settings(), ledger=ledger)), settings,
                                  poll_s=0.05)
        store = Store(settings.store_path)
        vloop = ValidatorLoop(chain, runtime, settings, store, FirstSeenStore(settings.store_path))

        def signal_once_calls_run():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not twin.deployments:
                time.sleep(0.05)
            time.sleep(1.5)  # a few 0.6 s calls are in flight or done
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=signal_once_calls_run, daemon=True).start()
        reports = []
        line = aio.run(serve(vloop, 60, reports.append, once=False, grace_s=20))
        assert line == "stopped by SIGTERM: round 1 abandoned, every Actor removed"
        assert reports == []  # the round was abandoned, not reported
        assert twin.deployments == {}  # deleted, through the shielded teardown
        assert [e.state for e in ledger.entries("deployment")] == ["stopped"]
        db = sqlite3.connect(settings.store_path)
        assert db.execute("SELECT id, abandoned, finished_at IS NOT NULL FROM rounds").fetchall() == [
            (1, "stopped by SIGTERM", 1)]
        assert db.execute("SELECT COUNT(*) FROM task_results").fetchone() == (0,)
        db.close()
        store.close()
        chain.close()


def test_a_lease_is_alive_while_it_beats_and_stale_after_a_few_missed_beats(tmp_path):
    lease = Lease(tmp_path, "run-a", beat_s=0.1, missed=3).start()
    assert run_is_alive(tmp_path, "run-a")
    first = read_lease(tmp_path, "run-a").beat_at
    time.sleep(0.35)
    assert read_lease(tmp_path, "run-a").beat_at > first  # the background thread keeps beating
    lease.stop(release=False)  # as SIGKILL leaves it: the file stays, the beats stop
    assert run_is_alive(tmp_path, "run-a")  # for now
    time.sleep(0.45)
    assert not run_is_alive(tmp_path, "run-a")  # judged by its age, never by a PID
    assert not run_is_alive(tmp_path, "never-ran")
    other = Lease(tmp_path, "run-b", beat_s=0.1).start()
    assert drop_stale_leases(tmp_path) == 1
    assert read_lease(tmp_path, "run-a") is None and run_is_alive(tmp_path, "run-b")
    other.stop()
    assert read_lease(tmp_path, "run-b") is None  # a clean stop releases the lease


class StuckTeardownRuntime:
    """Stand-in Actors whose teardown hangs (a daemon that stopped answering)."""

    name = "stuck"

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.removed_by_label = 0

    @contextlib.asynccontextmanager
    async def open(self, submission):
        self.opened.set()
        try:
            yield self  # its calls hang
        finally:
            await asyncio.shield(asyncio.sleep(3600))

    async def call(self, method, kwargs, timeout):
        await asyncio.sleep(3600)

    def remove_own(self) -> int:
        self.removed_by_label += 1
        return 1


def stuck_loop(tmp_path) -> tuple[ValidatorLoop, StuckTeardownRuntime, Store]:
    settings = Settings(_env_file=None, home=tmp_path, tasks=2, call_timeout=3600)
    chain = DevChain(tmp_path / "devchain.sqlite", hotkey="validator")
    chain.register(settings.netuid, "validator", validator_permit=True)
    chain.register(settings.netuid, "miner")
    chain.as_hotkey("miner").commit(settings.netuid, IMAGE.encode())
    runtime = StuckTeardownRuntime()
    store = Store(settings.store_path)
    return ValidatorLoop(chain, runtime, settings, store, FirstSeenStore(settings.store_path)), runtime, store


@pytest.mark.parametrize("signals, grace_s", [((signal.SIGTERM,), 1.0), ((signal.SIGINT, signal.SIGINT), 3600.0)])
def test_a_hung_teardown_is_cut_short_by_the_grace_or_a_second_signal(tmp_path, signals, grace_s):
    vloop, runtime, store = stuck_loop(tmp_path)

    def send():
        runtime.opened.wait(30)
        for sig in signals:
            time.sleep(0.3)
            os.kill(os.getpid(), sig)

    threading.Thread(target=send, daemon=True).start()
    started = time.monotonic()
    line = aio.run(asyncio.wait_for(serve(vloop, 60, lambda _r: None, once=False, grace_s=grace_s), 60))
    assert time.monotonic() - started < 30  # the bound is the point: neither an hour nor forever
    assert line == f"stopped by {signals[0].name}: round 1 abandoned, every Actor removed"
    assert runtime.removed_by_label == 1  # what the hung teardown had not removed, by label
    assert store.abandon_unfinished("again") == []
    store.close()


def test_sigterm_while_another_process_holds_the_state_file_is_handled_at_once(tmp_path):
    """The round's first write waits on a lock another process holds (busy timeout 2 s, retried with
    backoff: ~20 s before it gives up). The writes wait in threads, so the signal is handled at once
    and the validator stops within its bounded wait for the file, not after the retries."""
    settings = Settings(_env_file=None, home=tmp_path, tasks=2, call_timeout=5)
    chain = DevChain(tmp_path / "devchain.sqlite", hotkey="validator")
    chain.register(settings.netuid, "validator", validator_permit=True)
    chain.register(settings.netuid, "miner")
    chain.as_hotkey("miner").commit(settings.netuid, IMAGE.encode())
    store = Store(settings.store_path, busy_timeout=2.0)
    vloop = ValidatorLoop(chain, StuckTeardownRuntime(), settings, store, FirstSeenStore(settings.store_path))
    holder = sqlite3.connect(settings.store_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction
    handled: list[float] = []

    async def run() -> str:
        asyncio.get_running_loop().call_later(1.0, lambda: os.kill(os.getpid(), signal.SIGTERM))
        served = asyncio.ensure_future(serve(vloop, 60, lambda _r: None, once=False, grace_s=1.0))
        while not served.done():  # the loop's own heartbeat: a blocked loop would leave a gap here
            handled.append(time.monotonic())
            await asyncio.sleep(0.1)
        return served.result()

    started = time.monotonic()
    try:
        line = aio.run(asyncio.wait_for(run(), 60))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    elapsed = time.monotonic() - started
    gaps = [b - a for a, b in zip(handled, handled[1:])]
    assert max(gaps) < 1.0  # the event loop never waited on the locked file
    assert elapsed < 1.0 + 1.0 + STATE_WAIT_S + 3  # signal + grace + the bounded wait, not the retries
    assert line.startswith("stopped by SIGTERM") and "state file stayed locked" in line
    assert Store(settings.store_path).abandon_unfinished("at the next start") == []  # nothing was begun
