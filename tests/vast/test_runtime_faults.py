"""Faults by cause, as pure judgments of instance rows, and the money paths when Vast refuses:
a destroy that fails keeps the ledger row open until a later reclaim proves the instance gone; a
create Vast refuses is infrastructure with the row failed; an exhausted search quota skips the round
with one line."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from envs_factory import make_env
from subnet.protocol import FaultKind, InfraFault, MinerFault, Submission
from subnet.runtime.process import ProcessRuntime
from subnet.runtime.vast_judge import judge_death, judge_start
from subnet.twins.vast import VastTwin
from subnet.twins.vast.offers import vast_offer
from subnet.util import aio

from vast_support import KEY, digest_of, image_of, round_with, runtime_for


def row(actual, intended="running", msg="", is_bid=False):
    return SimpleNamespace(actual_status=actual, intended_status=intended, status_msg=msg, is_bid=is_bid)


def start(instance, at_deadline=False, running_for=None):
    return judge_start(instance, "sn-x", running_for=running_for, at_deadline=at_deadline, boot_s=60, total_s=900)


@pytest.mark.parametrize("instance, kind, words", [
    (row("exited", msg="Error response from daemon: manifest for x/y@sha256:1 not found: manifest unknown"),
     FaultKind.START_FAILED, "could not be pulled"),
    (row("exited", msg="Error response from daemon: pull access denied for x/y, repository does not exist"),
     FaultKind.START_FAILED, "could not be pulled"),
    (row("exited", msg="exited with code 3 at start: env failed to load: ImportError"), FaultKind.START_FAILED,
     "exited at start"),
    (row("running"), FaultKind.START_FAILED, "/health did not answer"),  # at its deadline, running
])
def test_the_miners_faults(instance, kind, words):
    running_for = 61.0 if instance.actual_status == "running" else None
    fault = start(instance, at_deadline=instance.actual_status == "running", running_for=running_for)
    assert isinstance(fault, MinerFault) and fault.kind is kind and words in fault.detail


@pytest.mark.parametrize("instance, words", [
    (None, "gone from the account"),
    (row("exited", "stopped", "Instance stopped: outbid by a higher bid", is_bid=True), "outbid"),
    (row("exited", "stopped", "", is_bid=True), "outbid"),
    (row("offline", "running", "Machine offline"), "offline"),
    (row("exited", "stopped", "stopped by the host"), "stopped from outside"),
    (row("exited", msg="Error response from daemon: no space left on device"), "failed on its host"),
    (row("exited", msg="nvidia-container-cli: initialization error: driver error"), "failed on its host"),
    (row("exited", msg="Error response from daemon: pull ... i/o timeout"), "failed on its host"),
])
def test_infrastructure_faults(instance, words):
    fault = start(instance)
    assert isinstance(fault, InfraFault) and words in str(fault)
    assert isinstance(judge_death(instance, "sn-x"), InfraFault)


def test_still_loading_is_waited_for_then_infrastructure_at_the_deadline():
    assert start(row("loading", msg="Pulling image")) is None
    assert start(row(None)) is None  # no status yet: a fresh create
    fault = start(row("loading", msg="Pulling image"), at_deadline=True)
    assert isinstance(fault, InfraFault) and "not running within 900s" in str(fault)


def test_death_check_blames_nobody_while_the_instance_runs():
    assert judge_death(row("running"), "sn-x") is None
    fault = judge_death(row("exited", msg="killed"), "sn-x")
    assert isinstance(fault, MinerFault) and fault.kind is FaultKind.UNREACHABLE


@pytest.fixture
def twin(tmp_path):
    env_dir = make_env(tmp_path / "envs", "honest", "m1")
    with VastTwin(runtime=ProcessRuntime(start_timeout=30), resolve={image_of(1): str(env_dir)}.__getitem__,
                  time_scale=30.0, offers=[vast_offer(501, "RTX A4000", "0.20", start_s=30),
                                           vast_offer(502, "RTX A4000", "0.25", start_s=30)], api_key=KEY) as twin:
        yield twin


def test_a_failed_destroy_keeps_the_row_open_until_a_reclaim_proves_it_gone(twin, tmp_path):
    runtime, ledger = runtime_for(tmp_path / "home", twin.base_url)
    twin.throttle("DELETE /instances/", 10)  # every retry of the destroy answers 429
    (outcome,) = round_with(runtime, uids=(1,)).values()
    assert all(t.verified for t in outcome.tasks)
    (entry,) = ledger.entries("instance")
    assert entry.live and "destroy failed" in entry.error and len(twin.instances) == 1  # not closed without proof
    twin.throttle("DELETE /instances/", -10)  # cancel the 429s the retries did not use
    assert aio.run(runtime.preflight([])) is None  # before the next round: reclaimed
    assert twin.instances == {} and not ledger.entries("instance")[0].live


def test_a_refused_create_is_infrastructure_and_the_row_failed(twin, tmp_path):
    runtime, ledger = runtime_for(tmp_path / "home", twin.base_url)
    twin.throttle("PUT /asks/", 10)

    async def scene():
        await runtime.preflight([Submission(1, "hk1", image_of(1), digest_of(1))])
        with pytest.raises(InfraFault, match="Vast create"):
            async with runtime.open(Submission(1, "hk1", image_of(1), digest_of(1))):
                pass

    aio.run(scene())
    (entry,) = ledger.entries("instance")
    assert entry.state == "failed" and twin.instances == {}


def test_an_exhausted_search_quota_skips_the_round_in_one_line(twin, tmp_path):
    runtime, _ = runtime_for(tmp_path / "home", twin.base_url)
    twin.search_quota(0)
    line = aio.run(runtime.preflight([Submission(1, "hk1", image_of(1), digest_of(1))]))
    assert line.startswith("round skipped: ") and "quota" in line and "\n" not in line
    assert KEY not in line
