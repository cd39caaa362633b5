"""Each way an Actor container can fail becomes one named fault; the validator survives it and no
container or network outlives the round (the `make_runtime` fixture asserts that by label)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time

import pytest

from subnet.challenges.matrix_chain import MatrixChain
from subnet.protocol import FaultKind, InfraFault, MinerFault
from subnet.runtime.docker import ROLE, ROLE_LABEL
from docker_support import TEST_LABEL, leftovers, run, sub

pytestmark = pytest.mark.docker


def fault_of(coro) -> MinerFault | InfraFault:
    with pytest.raises((MinerFault, InfraFault)) as caught:
        run(coro)
    return caught.value


def test_reference_env_answers_correctly(make_runtime, reference_image):
    """The lead's unmodified env folder, built here, serves the matrix-chain task correctly."""
    runtime = make_runtime(memory="512m")
    challenge = MatrixChain(n=64, depth=3)
    task = challenge.make_tasks(b"docker-reference", 1)[0]

    async def scenario():
        async with runtime.open(sub(reference_image.reference)) as session:
            return await session.call("evaluate", {"task_id": 1, **challenge.payload(task, "hk")}, timeout=30)

    answer = run(scenario())
    assert len(answer["row_sums"]) == 64
    assert challenge.verify(task, [challenge.receive(task, "hk", answer)])[0].ok


def test_memory_hog_is_oom_killed_and_named(make_runtime, hostile_image):
    runtime = make_runtime(memory="128m")

    async def scenario():
        async with runtime.open(sub(hostile_image.reference)) as session:
            await session.call("hog_memory", {"mib": 2048}, timeout=60)

    fault = fault_of(scenario())
    assert isinstance(fault, MinerFault) and fault.kind is FaultKind.UNREACHABLE
    assert "OOM-killed" in fault.detail and "128m" in fault.detail


def test_hanging_actor_times_out(make_runtime, hostile_image):
    runtime = make_runtime()

    async def scenario():
        async with runtime.open(sub(hostile_image.reference)) as session:
            started = time.monotonic()
            try:
                await session.call("hang", {}, timeout=2.0)
            finally:
                assert time.monotonic() - started < 5

    fault = fault_of(scenario())
    assert isinstance(fault, MinerFault) and fault.kind is FaultKind.TIMEOUT


def test_huge_answer_is_oversized(make_runtime, hostile_image):
    runtime = make_runtime(max_response_bytes=64 * 1024)

    async def scenario():
        async with runtime.open(sub(hostile_image.reference)) as session:
            assert await session.call("huge", {"nbytes": 1000}, timeout=10) == "x" * 1000  # small is fine
            await session.call("huge", {"nbytes": 8 << 20}, timeout=30)

    fault = fault_of(scenario())
    assert isinstance(fault, MinerFault) and fault.kind is FaultKind.OVERSIZED


def test_container_that_exits_at_start_is_start_failed(make_runtime, exit_at_start_ref):
    runtime = make_runtime(start_timeout=30)
    started = time.monotonic()

    async def scenario():
        async with runtime.open(sub(exit_at_start_ref)):
            pytest.fail("an exited container must not yield a session")

    fault = fault_of(scenario())
    assert isinstance(fault, MinerFault) and fault.kind is FaultKind.START_FAILED
    assert "code 3" in fault.detail
    assert time.monotonic() - started < 15  # noticed at once, not at the start deadline


def test_server_on_another_port_is_start_failed(make_runtime, wrong_port_ref):
    runtime = make_runtime(start_timeout=6)

    async def scenario():
        async with runtime.open(sub(wrong_port_ref)):
            pytest.fail("a server on another port must not yield a session")

    fault = fault_of(scenario())
    assert isinstance(fault, MinerFault) and fault.kind is FaultKind.START_FAILED
    assert "port 8000 within 6s" in fault.detail


def test_missing_images_are_infra_faults_and_bad_sources_are_miner_faults(make_runtime, hostile_image):
    runtime = make_runtime(pull=True)
    absent_local = "local.invalid/subnet-test/absent@sha256:" + "ab" * 32
    # A registry that does not answer (loopback, nothing listening): the pull fails -> infra.
    unreachable = "localhost:5999/subnet-test/absent@sha256:" + "cd" * 32

    async def open_only(source: str):
        async with runtime.open(sub(source)):
            pass

    assert isinstance(fault_of(open_only(absent_local)), InfraFault)
    fault = fault_of(open_only(unreachable))
    assert isinstance(fault, InfraFault) and "localhost:5999" in str(fault)
    bad = fault_of(open_only("my-env:latest"))
    assert isinstance(bad, MinerFault) and bad.kind is FaultKind.INVALID_ENV
    strict = make_runtime()
    strict.allow_local = False  # validators: a local reference on chain could name any local image

    async def strict_open():
        async with strict.open(sub(hostile_image.reference)):
            pass

    refused = fault_of(strict_open())
    assert isinstance(refused, MinerFault) and refused.kind is FaultKind.INVALID_ENV


def test_concurrent_actors_are_isolated_and_the_loop_stays_free(docker_client, make_runtime, hostile_image):
    runtime = make_runtime()
    gaps: list[float] = []

    async def ticker(stop: asyncio.Event):
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.05)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def one(uid: int):
        async with runtime.open(sub(hostile_image.reference, uid=uid)) as session:
            return await session.call("evaluate", {"task_id": uid}, timeout=20)

    async def scenario():
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(stop))
        try:
            return await asyncio.gather(*(one(uid) for uid in (1, 2, 3)))
        finally:
            stop.set()
            await tick

    answers = run(scenario())
    assert [a["task_id"] for a in answers] == [1, 2, 3]
    assert max(gaps) < 1.0, f"the event loop was blocked for {max(gaps):.2f}s"


def test_reap_stale_removes_only_this_validators_dead_runs(docker_client, make_runtime, base_image, tmp_path):
    """Judged by the lease alone: a dead run whose labels name PID 1 on this very host (alive to
    `kill(pid, 0)`, as after `docker restart`) is reaped; a live run of the same validator and
    everything of another validator (or of no validator) are not."""
    import json
    import os

    from subnet.state.lease import Lease, lease_dir
    from subnet.runtime.docker import OWNER_LABEL

    runtime = make_runtime(home=tmp_path / "me")

    def labels(owner: str, run_id: str) -> dict[str, str]:
        return {ROLE_LABEL: ROLE, OWNER_LABEL: owner, "subnet.run": run_id, "subnet.pid": "1",
                "subnet.host": socket.gethostname(), TEST_LABEL: "reap"}

    folder = lease_dir(tmp_path / "me")
    folder.mkdir(parents=True)
    (folder / "crashed-run.json").write_text(json.dumps({"run": "crashed-run", "pid": 1, "stale_after_s": 6,
                                                         "beat_at": time.time() - 60}))
    live = Lease(tmp_path / "me", "live-run", beat_s=0.2).start()
    cases = {"crashed": labels(runtime.identity, "crashed-run"), "live": labels(runtime.identity, "live-run"),
             "neighbour": labels("0123456789ab", "neighbour-run"),
             "unowned": {ROLE_LABEL: ROLE, "subnet.run": "old-run", TEST_LABEL: "reap"}}
    made = []
    try:
        for name, lab in cases.items():
            made.append(docker_client.containers.create(base_image.id, ["true"], labels=lab))
            made.append(docker_client.networks.create(f"subnet-test-reap-{name}-{os.getpid()}", internal=True, labels=lab))
        reaped = runtime.reap_stale()
        assert (reaped.containers, reaped.networks) == (1, 1)
        assert leftovers(docker_client, "crashed-run") == ([], [])
        for run_id in ("live-run", "neighbour-run", "old-run"):
            kept_containers, kept_networks = leftovers(docker_client, run_id)
            assert len(kept_containers) == 1 and len(kept_networks) == 1, run_id
        assert not (folder / "crashed-run.json").exists()  # its lease is dropped with its leftovers
    finally:
        live.stop()
        for thing in made:
            try:
                thing.remove(force=True) if hasattr(thing, "stop") else thing.remove()
            except Exception:  # noqa: BLE001 - already reaped
                pass


def test_a_round_cancelled_mid_start_leaves_nothing(make_runtime, wrong_port_ref):
    runtime = make_runtime(start_timeout=20)

    async def scenario():
        async def open_and_wait():
            async with runtime.open(sub(wrong_port_ref)):
                pytest.fail("never healthy")

        task = asyncio.create_task(open_and_wait())
        await asyncio.sleep(1.5)  # the container exists by now, its server is not healthy
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    started = time.monotonic()
    run(scenario())
    assert time.monotonic() - started < 10  # the start is aborted, not waited out (20 s)
    # make_runtime asserts, by label, that no container or network is left


def test_every_round_starts_by_reaping_this_validators_orphans(docker_client, make_runtime, base_image, tmp_path):
    """Not once per process: an orphan that appears while the validator runs (e.g. left by a
    dry run of the same state directory that was killed) is gone by the next round."""
    from subnet.chain.devchain import DevChain
    from subnet.state.first_seen import FirstSeenStore
    from subnet.runtime.docker import OWNER_LABEL
    from subnet.state.store import Store
    from subnet.validator.loop import ValidatorLoop

    runtime = make_runtime(home=tmp_path)
    chain = DevChain(tmp_path / "devchain.sqlite", hotkey="validator")
    chain.register(1, "validator", validator_permit=True)
    store = Store(tmp_path / "state.sqlite")
    vloop = ValidatorLoop(chain, runtime, runtime.settings, store, FirstSeenStore(tmp_path / "state.sqlite"))
    run(vloop.run_once())  # round 1
    orphan = docker_client.containers.create(base_image.id, ["true"], labels={
        ROLE_LABEL: ROLE, OWNER_LABEL: runtime.identity, "subnet.run": "killed-dry-run", TEST_LABEL: "reap"})
    try:
        run(vloop.run_once())  # round 2 begins by reaping it: the dead run has no lease
        assert leftovers(docker_client, "killed-dry-run") == ([], [])
    finally:
        with contextlib.suppress(Exception):
            orphan.remove(force=True)
        store.close()
        chain.close()
