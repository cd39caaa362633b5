"""The Vast runtime against the Vast twin, whose instances really run their env folders (process
runtime) with the instance's env, so the Actor checks its bearer token as on Vast. A whole round:
offer → ledger row → create → running + /health → calls with the token → verify → destroy."""

from __future__ import annotations

from decimal import Decimal

import pytest

from envs_factory import make_broken_env, make_env
from subnet.compute.selection import learn_starts, samples_from_ledger
from subnet.protocol.actor_auth import ACTOR_TOKEN_ENV
from subnet.runtime.process import ProcessRuntime
from subnet.twins.vast import VastTwin
from subnet.twins.vast.offers import vast_offer

from vast_support import KEY, image_of, round_with, runtime_for

OFFERS = [
    vast_offer(101, "RTX A4000", "0.30", start_s=60),
    vast_offer(102, "RTX A4000", "0.20", start_s=60),
    vast_offer(103, "Tesla V100", "0.50", min_bid="0.12", start_s=60),  # a bid at 0.12: the cheapest
    vast_offer(104, "RTX 4090", "0.10", start_s=60),  # cheaper, not allowed
    vast_offer(105, "RTX A4000", "0.90", start_s=60),  # allowed model, over the cap
]


@pytest.fixture
def envs(tmp_path):
    root = tmp_path / "envs"
    return {1: make_env(root, "honest", "m1"), 2: make_env(root, "honest", "m2"),
            3: make_broken_env(root, "exits_at_import"), 4: make_env(root, "wrong", "m4"),
            5: make_env(root, "slow", "m5")}


@pytest.fixture
def twin(envs):
    images = {image_of(uid): str(path) for uid, path in envs.items()}
    with VastTwin(runtime=ProcessRuntime(start_timeout=30), resolve=images.__getitem__, time_scale=15.0,
                  offers=OFFERS, api_key=KEY) as twin:
        yield twin


def test_an_honest_round_on_the_cheapest_allowed_boxes(twin, tmp_path):
    runtime, ledger = runtime_for(tmp_path / "home", twin.base_url)
    outcomes = round_with(runtime, uids=(1, 2, 4))
    for uid in (1, 2):
        assert all(t.verified for t in outcomes[uid].tasks), outcomes[uid].tasks
    assert outcomes[4].faults == {"wrong_answer": 3}  # a dishonest Actor on its own box, judged as usual
    rented = sorted((c.offer_id, c.price) for c in twin.created)
    assert rented == [(102, None), (103, 0.12), (101, None)] or {r[0] for r in rented} == {101, 102, 103}
    assert all(c.offer_id not in (104, 105) for c in twin.created)  # never outside the policy or above the cap
    bid = next(c for c in twin.created if c.offer_id == 103)
    assert bid.price is not None and Decimal(str(bid.price)) <= Decimal("0.44")
    for created in twin.created:
        assert created.label.startswith(runtime.prefix)
        assert set(created.env_keys) == {ACTOR_TOKEN_ENV, "-p 8000:8000"}  # token + port, no validator secret
    prices = {o.hourly_price for o in outcomes.values()}
    assert prices == {0.12, 0.2, 0.3}
    assert twin.instances == {}  # every instance destroyed ...
    rows = ledger.entries("instance")
    assert len(rows) == 3 and all(r.state == "stopped" and r.remote_id for r in rows)  # ... on proof
    assert all(r.detail["provider"] == "vast" and r.detail["ready_at"] >= r.created_at for r in rows)


def test_start_times_are_learned_per_machine_from_the_rows_the_runtime_wrote(twin, tmp_path):
    """Each row names its offer's machine (the twin's `machine_id`, vastai/data/offer.py), so the next
    round's selection knows how fast that very host started an image."""
    runtime, ledger = runtime_for(tmp_path / "home", twin.base_url)
    round_with(runtime, uids=(1, 2))
    rows = ledger.entries("instance")
    learned = learn_starts(samples_from_ledger(rows))
    machines = {twin_machine(r.offering_id) for r in rows}
    assert {r.detail["machine_id"] for r in rows} == machines and len(machines) == 2
    assert {host for _, host in learned.hosts} == machines
    for row in rows:
        seconds = row.detail["ready_at"] - row.created_at
        assert learned.hosts[("vast", row.detail["machine_id"])] == (pytest.approx(seconds), 1)
        estimate = learned.estimate("vast", "some other GPU", row.detail["machine_id"])
        assert estimate.seconds == pytest.approx(seconds) and estimate.source.endswith("on this machine")


def twin_machine(offer_id: str) -> str:
    return next(str(o.row["machine_id"]) for o in OFFERS if str(o.row["id"]) == offer_id)


def test_an_image_that_exits_at_start_is_the_miners_fault(twin, tmp_path):
    runtime, ledger = runtime_for(tmp_path / "home", twin.base_url)
    outcomes = round_with(runtime, uids=(1, 3))
    assert all(t.verified for t in outcomes[1].tasks)
    assert outcomes[3].faults == {"start_failed": 3}, outcomes[3].tasks
    assert "exited at start" in outcomes[3].first_reason
    assert twin.instances == {} and all(r.state == "stopped" for r in ledger.entries("instance"))


def test_an_image_the_registry_lacks_is_the_miners_fault(twin, tmp_path):
    runtime, ledger = runtime_for(tmp_path / "home", twin.base_url)
    outcomes = round_with(runtime, uids=(9,))  # resolve() has no env for it: "manifest unknown"
    assert outcomes[9].faults == {"start_failed": 3}, outcomes[9].reasons
    assert "could not be pulled" in outcomes[9].first_reason
    assert twin.instances == {}


def test_no_offer_within_the_policy_is_infrastructure(twin, tmp_path):
    twin.set_offers([vast_offer(104, "RTX 4090", "0.10"), vast_offer(105, "RTX A4000", "0.90")])
    runtime, ledger = runtime_for(tmp_path / "home", twin.base_url)
    (outcome,) = _open_round(runtime, uids=(1,)).values()
    assert outcome.faults == {"infra": 3} and "no Vast offer within the policy" in outcome.first_reason
    assert twin.created == [] and ledger.entries("instance") == []


def _open_round(runtime, uids):
    """A round without the preflight (which would skip it): each open meets the fault itself."""
    from subnet.challenges.matrix_chain import MatrixChain
    from subnet.protocol import Submission
    from subnet.util import aio
    from subnet.validator.round import RoundEngine, RoundLimits
    from vast_support import digest_of

    challenge = MatrixChain(n=64, depth=2)
    subs = [Submission(uid, f"hk{uid}", image_of(uid), digest_of(uid)) for uid in uids]
    engine = RoundEngine(runtime, challenge, RoundLimits(call_timeout=20))
    return {o.submission.uid: o for o in aio.run(engine.run(subs, challenge.make_tasks(b"vast", 3)))}


def test_preflight_skips_a_round_with_nothing_to_rent(twin, tmp_path):
    from subnet.util import aio

    twin.set_offers([vast_offer(105, "RTX A4000", "0.90")])
    runtime, _ = runtime_for(tmp_path / "home", twin.base_url)
    from subnet.protocol import Submission
    line = aio.run(runtime.preflight([Submission(1, "hk1", image_of(1), "sha256:" + "01" * 32)]))
    assert line is not None and line.startswith("round skipped") and "\n" not in line


def _knock_when_serving(twin, knock, after_s: float = 1.0):
    """In a thread: once the one instance runs, wait `after_s` (some calls answered), then knock it."""
    import threading
    import time

    def watch():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = [twin.instance_row(i) for i in list(twin.instances)]
            running = [r for r in rows if r and r["actual_status"] == "running"]
            if running:
                time.sleep(after_s)
                knock(running[0]["id"])
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("how, offers, words", [
    ("outbid", [vast_offer(103, "Tesla V100", "0.50", min_bid="0.12", start_s=30)], "outbid"),
    ("lose_machine", [vast_offer(102, "RTX A4000", "0.20", start_s=30)], "offline"),
])
def test_a_box_lost_mid_round_is_infrastructure_not_the_miner(twin, tmp_path, envs, how, offers, words):
    twin.set_offers(offers)
    runtime, ledger = runtime_for(tmp_path / "home", twin.base_url)
    thread = _knock_when_serving(twin, getattr(twin, how))
    (outcome,) = round_with(runtime, uids=(5,), tasks=8, per_miner=1).values()
    thread.join(30)
    assert outcome.counted == [t for t in outcome.tasks if t.verified]  # nothing blamed on the miner
    assert outcome.faults.get("infra", 0) >= 1, outcome.tasks
    assert words in outcome.reasons["infra"], outcome.reasons
    assert twin.instances == {} and [r.state for r in ledger.entries("instance")] == ["stopped"]
