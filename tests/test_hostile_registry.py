"""A miner's registry is hostile ground: every misbehaviour of `hostile_registry.HostileRegistry`
costs at most its own miner's round. Each case runs a whole `ValidatorLoop` round on real-network
rules (the loopback registry allowlisted, DNS stubbed: nothing leaves this machine) with an honest
miner beside the hostile one, and checks that the round ends within its configured deadlines, the
honest miner is paid, memory stays bounded, and the fault lands on the miner that committed it.

Deadlines are time-scaled (1 s per request instead of 15 s); the assertions use the settings."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from subnet.util import aio
from subnet.chain.devchain import DevChain
from subnet.state.first_seen import FirstSeenStore
from subnet.config import Settings
from subnet.twins.standin import EchoChallenge, StandInRuntime
from subnet.state.store import Store
from subnet.validator import loop as loop_module
from subnet.validator.admission import ImageInspector
from subnet.validator.loop import ValidatorLoop

from hostile_registry import HONEST, THIEF, HostileRegistry, RssSampler

NETUID = 1
DEADLINES = {"registry_timeout": 1.0, "admission_timeout": 2.5, "admission_round_timeout": 4.0}
SLACK_S = 2.0  # the round's own work around the registry check (stand-in Actors, SQLite)
MEMORY_BOUND = 64 << 20


def resolve(host: str) -> list[str]:
    """Stub DNS: every name is a private address (so a hop to it must be refused, never tried)."""
    return ["10.0.0.66"]


@pytest.fixture
def registry():
    with HostileRegistry(byte_every_s=0.5) as server:
        yield server


def make_loop(tmp_path, monkeypatch, registry: HostileRegistry, commits: list[tuple[str, str]], **settings):
    monkeypatch.setattr(loop_module, "CachingResolver", lambda: resolve)
    chain = DevChain(tmp_path / "devchain.sqlite", hotkey="validator")
    chain.register(NETUID, "validator", validator_permit=True)
    for hotkey, repo in commits:  # one block each, in this order
        chain.register(NETUID, hotkey)
        chain.as_hotkey(hotkey).commit(NETUID, registry.reference(repo).encode())
    config = Settings(home=tmp_path, netuid=NETUID, tasks=2, allowed_registries=[registry.host],
                      **{**DEADLINES, **settings})
    store = Store(tmp_path / "subnet.sqlite")
    inspector = ImageInspector.for_validator(store, config, loopback_only=False, resolve=resolve)
    vloop = ValidatorLoop(chain, StandInRuntime(0.001), config, store, FirstSeenStore(store.path), inspector=inspector)
    vloop.validator.challenge = EchoChallenge()  # stand-in Actors answer the echo challenge
    return vloop


def run_round(vloop):
    started = time.monotonic()
    report = aio.run(vloop.run_once())
    return report, time.monotonic() - started


CASES = {
    # repo: (fault counted against its miner, or "infra"; words in the reason)
    "nested/env": ("bad_image", "nested too deeply"),
    "slow/env": ("infra", "no complete answer to a request within 1s"),
    "endless/env": ("bad_image", "a body over 4194304 bytes"),
    "huge/env": ("bad_image", "a body of 100000000 bytes"),
    "wrong/env": ("bad_image", "manifest does not match its digest"),
    "index/env": ("bad_image", "linux/amd64 manifest does not match its digest"),
    "redirect/env": ("bad_image", "redirect to http://169.254.169.254/"),
    "realm/env": ("bad_image", "token realm http://127.0.0.1.example.com/token is plain HTTP to a host that is not this machine"),
    "hang-token/env": ("infra", "no complete answer to a token request within 1s"),
}


@pytest.mark.parametrize("repo", sorted(CASES))
def test_a_hostile_registry_costs_its_own_miner_the_round_and_nothing_else(tmp_path, monkeypatch, registry, repo):
    kind, words = CASES[repo]
    vloop = make_loop(tmp_path, monkeypatch, registry, [(HONEST, "honest/env"), ("5Hostile", repo)])
    with RssSampler() as memory:
        report, wall_s = run_round(vloop)

    miners = {m.hotkey: m for m in report.miners}
    honest, hostile = miners[HONEST], miners["5Hostile"]
    assert honest.verified == honest.tasks == 2 and report.weights[honest.uid] > 0  # the honest miner is paid
    assert hostile.faults == {kind: 2} and words in hostile.reason, hostile.reason  # its own fault, named
    assert report.weights.get(hostile.uid, 0.0) == 0.0
    assert wall_s < vloop.settings.admission_round_timeout + SLACK_S
    if kind == "infra":  # a request that never completes is cut at its own deadline, not the round's
        assert wall_s < vloop.settings.registry_timeout + SLACK_S
    assert memory.growth < MEMORY_BOUND, f"{memory.growth >> 20} MiB"
    assert vloop.store.image_labels([registry.digests["honest/env"]]) == {registry.digests["honest/env"]: HONEST}
    assert vloop.store.image_labels([registry.digests[repo]]) == {}  # nothing from unverified content
    vloop.store.close()


def test_every_hostile_registry_at_once_leaves_the_loop_running_round_after_round(tmp_path, monkeypatch, registry, caplog):
    """All of them in one round, three rounds in a row, and a validator bug in the middle round:
    the loop logs that traceback once, marks the round abandoned and goes on; the nested manifest
    (a fault proven by its own bytes) is read once, not every round."""
    commits = [(HONEST, "honest/env")] + [(f"5M{i}", repo) for i, repo in enumerate(sorted(CASES))]
    vloop = make_loop(tmp_path, monkeypatch, registry, commits, admission_concurrency=4)
    reports, slept = [], []
    original = vloop.validator.run_round
    calls = {"n": 0}

    async def sometimes_broken(plan, seed, progress=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RecursionError("maximum recursion depth exceeded")  # as json.loads used to
        return await original(plan, seed, progress)

    async def sleep(seconds):
        slept.append(seconds)
        if len(reports) == 2:
            raise asyncio.CancelledError  # enough: stop the loop as a signal would

    vloop.validator.run_round = sometimes_broken
    vloop.sleep = sleep
    with caplog.at_level(logging.WARNING), RssSampler() as memory, pytest.raises(asyncio.CancelledError):
        aio.run(vloop.run_forever(600, reports.append))

    assert len(reports) == 2 and calls["n"] == 3  # round 2 failed, round 3 ran
    for report in reports:
        miners = {m.hotkey: m for m in report.miners}
        assert miners[HONEST].verified == 2 and report.weights[miners[HONEST].uid] > 0
        assert {m.hotkey for m in report.miners if m.verified} == {HONEST}
    assert caplog.text.count("Traceback") == 1 and "round failed unexpectedly" in caplog.text
    assert "round abandoned: validator error: RecursionError" in caplog.text
    assert registry.asked("nested/env") == 1  # remembered: its bytes are its digest's, for good
    assert memory.growth < MEMORY_BOUND
    vloop.store.close()


@pytest.mark.parametrize("order", ["thief after", "thief first"])
def test_a_thief_never_takes_an_honest_digest(tmp_path, monkeypatch, registry, order):
    """The thief commits the honest miner's digest on a registry of its own that serves the honest
    manifest and a config relabelled for the thief; a mirror serves the honest image unchanged."""
    honest, thief, mirror = (HONEST, "honest/env"), (THIEF, "thief/env"), ("5Mirror", "mirror/env")
    commits = [honest, thief, mirror] if order == "thief after" else [thief, mirror, honest]
    vloop = make_loop(tmp_path, monkeypatch, registry, commits)
    digest = registry.digests["honest/env"]
    thief_faults = []
    for _ in range(2):  # and the next round still knows who owns it
        report, _ = run_round(vloop)
        miners = {m.hotkey: m for m in report.miners}
        assert miners[HONEST].verified == 2 and miners[HONEST].faults == {}
        assert report.weights[miners[HONEST].uid] == pytest.approx(1.0)
        assert miners[THIEF].verified == 0 and report.weights.get(miners[THIEF].uid, 0.0) == 0.0
        assert miners["5Mirror"].faults == {"copy": 2} and f"labelled for hotkey {HONEST}" in miners["5Mirror"].reason
        assert vloop.store.image_labels([digest]) == {digest: HONEST}
        thief_faults.append((miners[THIEF].faults, miners[THIEF].reason))
    # Round 1: the thief's own registry is read and fails verification; round 2: the verified
    # label is known, so the thief is a copy without asking its registry again.
    assert thief_faults[0][0] == {"bad_image": 2} and "image config does not match its digest" in thief_faults[0][1]
    assert thief_faults[1][0] == {"copy": 2} and f"labelled for hotkey {HONEST}" in thief_faults[1][1]
    assert registry.asked("thief/env") == 2  # its manifest and its config, in round 1 only
    vloop.store.close()
