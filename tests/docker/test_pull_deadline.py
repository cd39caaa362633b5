"""A registry that trickles a layer costs one miner its start, not the round: the pull is
abandoned when it stops making progress, the miner's tasks are infrastructure faults naming the
image, the other miners are run and scored, and the daemon stops talking to that registry."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import pytest

from subnet.util import aio
from subnet.challenges.matrix_chain import MatrixChain
from subnet.runtime import docker as docker_module
from subnet.runtime.image_pull import STALL_MIN_BYTES, Progress, PullTimedOut
from subnet.runtime.images import pull
from subnet.validator.round import RoundEngine, RoundLimits
from docker_support import sub
from trickle_registry import TrickleRegistry

pytestmark = pytest.mark.docker


@pytest.mark.parametrize("every_s, chunk, why", [
    (0.5, 1, "no progress at all for 4s"),  # one byte every 0.5 s: the daemon reports nothing
    (0.2, 2048, "bytes in the last 4s"),  # 10 KiB/s: progress, but too little per window
])
def test_trickling_registry_costs_one_start_and_the_round_goes_on(
    docker_client, make_runtime, reference_image, every_s, chunk, why
):
    runtime = make_runtime(pull=True, settings={"pull_stall_timeout": 4.0, "pull_timeout": 120.0})
    engine = RoundEngine(runtime, MatrixChain(n=64, depth=2), RoundLimits(call_timeout=30))
    with TrickleRegistry(byte_every_s=every_s, chunk=chunk) as registry:
        honest, trickled = sub(reference_image.reference, uid=1), sub(registry.reference, uid=2)
        started = time.monotonic()
        outcomes = aio.run(engine.run([honest, trickled], MatrixChain(n=64, depth=2).make_tasks(b"pull", 2)))
        wall_s = time.monotonic() - started
        assert any("/blobs/" in r for r in registry.requests) and registry.layer_bytes_sent > 0  # it was trickling
        assert registry.hung_up.wait(20), "the daemon kept pulling from the trickling registry"
    by_uid = {o.submission.uid: o for o in outcomes}
    assert [t.verified for t in by_uid[1].tasks] == [True, True]  # the honest miner was run and scored
    slow = by_uid[2].tasks
    assert all(t.infra for t in slow) and by_uid[2].counted == []  # infrastructure: never charged
    assert "stalled: " in slow[0].reason and why in slow[0].reason and registry.reference in slow[0].reason
    assert wall_s < 60, f"the round waited {wall_s:.0f}s on one registry"
    with pytest.raises(Exception):
        docker_client.images.get(registry.reference)  # nothing half-pulled was kept as an image


class TimedRuntime:
    """The Docker runtime, noting when each Actor was started and first called (validator clock)."""

    def __init__(self, inner) -> None:
        self.inner, self.name = inner, inner.name
        self.started: dict[int, float] = {}
        self.first_call: dict[int, float] = {}

    def __getattr__(self, name):
        return getattr(self.inner, name)

    @contextlib.asynccontextmanager
    async def open(self, submission):
        async with self.inner.open(submission) as actor:
            self.started[submission.uid] = time.monotonic()
            timed = self

            class Actor:
                async def call(self, method, kwargs, timeout):
                    timed.first_call.setdefault(submission.uid, time.monotonic())
                    return await actor.call(method, kwargs, timeout)

            yield Actor()


def test_a_slow_pull_does_not_hold_the_other_miners_tasks(docker_client, make_runtime, reference_image, monkeypatch):
    """A pull that keeps just above the stall rule would run to the total cap; the round waits for
    it only as long as its pull window, the honest miner's tasks start then at the latest, the slow
    miner is infrastructure for the round, and its pull goes on in the background."""
    pull_wait = 3.0  # time-scaled: 120 s in production (SUBNET_PULL_WAIT)
    pulls = []

    def counted_pull(client, ref, *limits):
        pulls.append(str(ref))
        return pull(client, ref, *limits)

    monkeypatch.setattr(docker_module, "pull", counted_pull)
    runtime = make_runtime(pull=True, settings={"pull_stall_timeout": 60.0, "pull_timeout": 120.0})
    timed = TimedRuntime(runtime)
    challenge = MatrixChain(n=64, depth=2)
    engine = RoundEngine(timed, challenge, RoundLimits(call_timeout=30, pull_wait=pull_wait))
    with TrickleRegistry(byte_every_s=0.2, chunk=8 * 1024) as registry:  # 40 KiB/s: no stall, 25 s in all
        honest, trickled = sub(reference_image.reference, uid=1), sub(registry.reference, uid=2)
        started = time.monotonic()
        outcomes = aio.run(engine.run([honest, trickled], challenge.make_tasks(b"pull", 2)))
        wall_s = time.monotonic() - started
        assert not registry.hung_up.is_set() and registry.layer_bytes_sent > 0  # still pulling
        # A later round joins the pull in flight instead of starting another, and then has the image.
        aio.run(asyncio.wait_for(runtime.prepare(trickled), 60))
        assert pulls == [registry.reference]
    try:
        assert docker_client.images.get(registry.reference).id
    finally:
        docker_client.images.remove(registry.reference, force=True)
    by_uid = {o.submission.uid: o for o in outcomes}
    assert [t.verified for t in by_uid[1].tasks] == [True, True]
    assert all(t.infra for t in by_uid[2].tasks)
    assert f"pull not finished within the round's pull window of {pull_wait:g}s" in by_uid[2].tasks[0].reason
    # The honest miner's first call came as soon as it was up, or when the pull window closed.
    assert timed.first_call[1] - started <= max(timed.started[1] - started, pull_wait) + 1.0
    assert wall_s < 60, f"the round waited {wall_s:.0f}s on one pull"


def test_progress_rule_is_bytes_per_window():
    progress = Progress(stall_s=10)
    start = progress.window_start
    progress.record({"id": "l1", "status": "Downloading", "progressDetail": {"current": STALL_MIN_BYTES}})
    progress.check(start + 9)  # a window's worth of bytes: a new window starts
    progress.record({"id": "l1", "status": "Downloading", "progressDetail": {"current": STALL_MIN_BYTES + 5}})
    progress.check(start + 18)
    with pytest.raises(PullTimedOut, match="stalled: 5 bytes in the last 10s"):
        progress.check(start + 20)


def test_a_registry_at_full_speed_pulls_by_digest(docker_client):
    """The deadline-aware pull still pulls: the same loopback registry, sending the layer at once."""
    from subnet.protocol.commitment import parse_image_ref

    with TrickleRegistry(byte_every_s=0, chunk=1 << 30) as registry:
        ref = parse_image_ref(registry.reference)
        image = pull(docker_client, ref, stall_s=10, total_s=60)
        try:
            assert registry.reference.split("@")[1] in image.attrs["RepoDigests"][0]
            assert image.attrs["RootFS"]["Layers"] == [json.loads(registry.config)["rootfs"]["diff_ids"][0]]
        finally:
            docker_client.images.remove(image.id, force=True)
