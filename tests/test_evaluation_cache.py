"""Evaluate only what changed: rounds over the devchain with stand-in Actors that count their starts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from subnet.util import aio
from subnet.chain.base import NotReady
from subnet.chain.devchain import SUBNET_OWNER, DevChain
from subnet.config import Settings
from subnet.protocol import Submission
from subnet.twins.standin import EchoChallenge, StandInRuntime
from subnet.state.store import Evaluation, Store
from subnet.validator.cache import challenge_key, split_due
from subnet.validator.service import Validator, plan_round

NETUID = 1
VALIDATOR = "validator/default"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


class World:
    """A devchain with a permitted validator, miners that commit, and a validator with a store."""

    def __init__(self, tmp_path, challenge=None, runtime=None, **settings) -> None:
        self.chain = DevChain(tmp_path / "devchain.sqlite", hotkey=VALIDATOR)
        self.chain.register(NETUID, VALIDATOR, validator_permit=True)  # uid 1 (uid 0: the subnet owner)
        self.runtime = runtime or StandInRuntime(latency_s=0.001)
        defaults = {"home": tmp_path, "netuid": NETUID, "tasks": 3, "call_timeout": 0.5}
        self.settings = Settings(**{**defaults, **settings})
        self.store = Store(tmp_path / "subnet.sqlite")
        self.challenge = challenge or EchoChallenge()

    def commit(self, hotkey: str, n: int) -> int:
        uid = self.chain.register(NETUID, hotkey)
        self.chain.as_hotkey(hotkey).commit(NETUID, f"ghcr.io/x/{hotkey}@{digest(n)}".encode())
        return uid

    def round(self, challenge=None):
        plan = plan_round(self.chain.commitments(NETUID), lambda ref: str(ref))
        validator = Validator(self.chain, self.runtime, challenge or self.challenge, self.settings, self.store)
        return aio.run(validator.run_round(plan, b"seed"))


@pytest.fixture
def world(tmp_path):
    w = World(tmp_path)
    yield w
    w.store.close()
    w.chain.close()


def test_an_unchanged_image_is_not_run_again_and_weights_are_still_set(world):
    world.commit("alice", 1)
    world.commit("bob", 2)
    first = world.round()
    assert world.runtime.closed == 2 and first.evaluated == 2 and first.cached == 0
    weights_before = world.chain.last_weights(NETUID)

    world.chain.advance(5)
    second = world.round()
    assert world.runtime.closed == 2, "no Actor may start when no image changed"
    assert second.evaluated == 0 and second.cached == 2
    assert all(m.cached and m.verified == 3 for m in second.miners)
    assert second.weights_set.startswith("set for 2 uids")
    # set again, from stored results (the EMA of equal scores moves by float rounding only)
    assert world.chain.last_weights(NETUID) == pytest.approx(weights_before)
    sent = world.chain._db.execute("SELECT COUNT(*) FROM weights WHERE hotkey=?", (VALIDATOR,)).fetchone()[0]
    assert sent == 2
    assert world.store.recent_rounds(1)[0]["cached"] == 2


def test_a_changed_image_is_run_and_only_it(world):
    world.commit("alice", 1)
    world.commit("bob", 2)
    world.round()
    world.commit("bob", 3)  # bob ships a new image
    report = world.round()
    assert world.runtime.closed == 3
    assert {m.hotkey: m.cached for m in report.miners} == {"alice": True, "bob": False}
    assert report.evaluated == 1


def test_stale_results_are_re_evaluated_in_a_rotating_slice(tmp_path):
    w = World(tmp_path, reeval_interval=0, reeval_slice=1)
    for i, name in enumerate(("a", "b", "c")):
        w.commit(name, i + 1)
    w.round()
    assert w.runtime.closed == 3
    rerun = []
    for _ in range(3):
        report = w.round()
        rerun.append([m.hotkey for m in report.miners if not m.cached])
    assert [len(r) for r in rerun] == [1, 1, 1]  # flat cost per round
    assert sorted(sum(rerun, [])) == ["a", "b", "c"]  # every image gets its turn


def test_a_challenge_version_bump_re_runs_every_image(world):
    world.commit("alice", 1)
    world.round()
    world.round()
    assert world.runtime.closed == 1

    class EchoV2(EchoChallenge):
        version = "echo/2"

    report = world.round(EchoV2())
    assert world.runtime.closed == 2 and report.evaluated == 1


def test_a_hotkey_replaced_on_its_uid_starts_from_nothing(tmp_path):
    w = World(tmp_path, runtime=StandInRuntime(latency_s=0.001, hang_for=frozenset({f"ghcr.io/x/bob@{digest(2)}"})),
              call_timeout=0.05)
    w.commit("alice", 1)
    bob_uid = w.commit("bob", 2)  # bob's Actor hangs: his smoothed score is 0
    w.round()
    assert w.store.smoothed_scores()["bob"] == 0.0
    # The chain replaces bob on his uid with carol (deregistration, then a new registration).
    w.chain._db.execute("UPDATE neurons SET hotkey='carol' WHERE netuid=? AND hotkey='bob'", (NETUID,))
    w.chain._db.execute("DELETE FROM commitments WHERE hotkey='bob'")
    w.chain.as_hotkey("carol").commit(NETUID, f"ghcr.io/x/carol@{digest(9)}".encode())
    report = w.round()
    carol = next(m for m in report.miners if m.hotkey == "carol")
    assert carol.uid == bob_uid and carol.score > 0
    scores = w.store.smoothed_scores()
    assert "bob" not in scores
    assert scores["carol"] == pytest.approx(carol.score, abs=1e-6)  # taken as is: nothing of bob's history


def test_a_run_lost_to_infrastructure_keeps_the_stored_result(tmp_path):
    from subnet.protocol import InfraFault

    class FlakyRuntime(StandInRuntime):
        down = False

        def open(self, submission):
            if self.down:
                raise InfraFault("registry unreachable")
            return super().open(submission)

    w = World(tmp_path, runtime=FlakyRuntime(latency_s=0.001), reeval_interval=0)
    w.commit("alice", 1)
    w.round()
    w.runtime.down = True
    report = w.round()
    (alice,) = report.miners
    assert alice.cached and alice.verified == 3 and alice.weight == 1.0
    assert report.evaluated == 0  # not counted as evaluated: tried again next round


def test_an_image_missing_from_its_registry_is_the_miners_fault_and_is_not_cached(world):
    from subnet.protocol import FaultKind, MinerFault

    world.commit("alice", 1)
    plan = plan_round(world.chain.commitments(NETUID), lambda ref: str(ref))
    plan.faults[digest(1)] = MinerFault(FaultKind.IMAGE_MISSING, "manifest unknown")
    validator = Validator(world.chain, world.runtime, world.challenge, world.settings, world.store)
    report = aio.run(validator.run_round(plan, b"seed"))
    (alice,) = report.miners
    assert alice.faults == {"image_missing": 3} and alice.score == 0 and world.runtime.closed == 0
    # Once the image is pushed, the next round runs it: the failure was not cached.
    again = world.round()
    assert world.runtime.closed == 1 and again.miners[0].verified == 3 and not again.miners[0].cached


def test_nobody_earning_puts_all_weight_on_the_subnet_owners_uid(tmp_path):
    w = World(tmp_path, runtime=StandInRuntime(latency_s=0.001, hang_for=frozenset({f"ghcr.io/x/a@{digest(1)}"})),
              call_timeout=0.05)
    assert w.commit("a", 1) != 0  # a miner never holds the owner's uid 0
    report = w.round()
    assert report.weights == {0: 1.0} and report.burn_uid == 0
    assert report.burn_target == f"the subnet owner {SUBNET_OWNER}"
    assert report.weights_set == "set for 1 uids (nobody earned: all to the burn uid)"
    assert w.chain.last_weights(NETUID) == {0: 1.0}


def test_a_burn_uid_that_earned_is_not_called_a_burn(tmp_path):
    """SUBNET_BURN_UID may name a miner: its earned weight is not "nobody earned"."""
    w = World(tmp_path, burn_uid=2, burn_share=0.5)
    assert w.commit("a", 1) == 2
    report = w.round()
    assert report.weights == {2: 1.0} and report.miners[0].verified == 3
    assert report.weights_set == "set for 1 uids"


@pytest.mark.parametrize(
    "setup, expected",
    [
        (lambda c: c._db.execute("UPDATE neurons SET validator_permit=0 WHERE hotkey=?", (VALIDATOR,)), "no validator permit"),
        (lambda c: c.set_param("min_stake", 1000), "stake 0 is below the minimum 1000"),
        (lambda c: c.set_param("weights_version_key", 10**9), "older than the subnet's WeightsVersionKey"),
        (lambda c: c._db.execute("DELETE FROM neurons WHERE hotkey=?", (VALIDATOR,)), "not registered"),
    ],
)
def test_standing_is_checked_before_any_compute(world, setup, expected):
    world.commit("alice", 1)
    setup(world.chain)
    with pytest.raises(NotReady) as refused:
        world.round()
    assert expected in str(refused.value) and "\n" not in str(refused.value)
    assert world.runtime.closed == 0 and world.store.recent_rounds() == []


def test_enough_stake_passes_the_standing_check(world):
    world.chain.set_param("min_stake", 1000)
    world.chain.set_stake(NETUID, VALIDATOR, 1500)
    world.commit("alice", 1)
    assert world.round().weights_set.startswith("set for")


# -- the pure selection ------------------------------------------------------------------------
def sub(uid: int, n: int) -> Submission:
    return Submission(uid, f"hk{uid}", f"ref{uid}", digest(n))


def test_split_due_new_fresh_and_stale():
    cached = {digest(1): Evaluation(digest(1), 1, 100.0), digest(2): Evaluation(digest(2), 1, 900.0),
              digest(3): Evaluation(digest(3), 1, 50.0)}
    split = split_due([sub(1, 1), sub(2, 2), sub(3, 3), sub(4, 4)], cached, now=1000.0, interval_s=500, slice_size=1)
    assert [s.uid for s in split.due] == [4, 3]  # new, then the oldest stale one
    assert sorted(s.uid for s, _ in split.reused) == [1, 2]


@dataclass
class _Challenge:
    name: str = "matrix-chain"
    version: object = 1
    n: int = 256
    depth: int = 4


def test_challenge_key_reads_the_version_attribute_or_falls_back_to_the_name():
    assert challenge_key(_Challenge()) == "matrix-chain/1[n=256,depth=4]"
    assert challenge_key(_Challenge(version="matrix-chain/2")) == "matrix-chain/2[n=256,depth=4]"
    assert challenge_key(EchoChallenge()) == "echo/1"

    class Bare:
        name = "bare"

    assert challenge_key(Bare()) == "bare"
