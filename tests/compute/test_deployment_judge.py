"""Whose fault is a deployment that is not serving? Pure: from what Basilica says about it."""

from __future__ import annotations

import pytest

from subnet.compute.deployments import ContainerState, DeploymentInfo
from subnet.protocol import FaultKind, InfraFault, MinerFault
from subnet.runtime.basilica_watch import judge


def info(state="Active", phase=None, reason="", message="", container_state="waiting", message_top=None):
    containers = (ContainerState(container_state, reason, message),) if (reason or container_state == "running") else ()
    return DeploymentInfo("id", "sn-x", state, "https://x", phase=phase, containers=containers, message=message_top)


def fault(i, at_deadline=False, last_log=""):
    verdict = judge(i, at_deadline, timeout=60, last_log=last_log)
    return None if verdict is None else verdict.fault


@pytest.mark.parametrize("state", ["Active", "Pending", "Failed"])  # SRV's DB state, the issue's, the CR's
def test_a_crash_loop_is_the_miners_fault_whatever_the_state_says(state):
    f = fault(info(state, "failed", "CrashLoopBackOff", "back-off restarting"), last_log="ModuleNotFoundError: x")
    assert isinstance(f, MinerFault) and f.kind is FaultKind.START_FAILED
    assert "crashloopbackoff" in f.detail and "ModuleNotFoundError" in f.detail


def test_oom_and_a_failed_phase_without_reasons_are_the_miners():
    assert isinstance(fault(info(phase="failed", reason="OOMKilled", container_state="terminated")), MinerFault)
    assert isinstance(fault(info(phase="failed")), MinerFault)


def test_an_image_the_registry_does_not_have_is_the_miners_fault_at_once():
    f = fault(info(phase="pulling", reason="ErrImagePull", message="manifest unknown: manifest unknown"))
    assert isinstance(f, MinerFault) and "cannot be pulled" in f.detail


def test_a_slow_or_failing_pull_is_infrastructure_only_when_it_gives_up():
    pulling = info(phase="pulling", reason="ImagePullBackOff", message="i/o timeout")
    assert fault(pulling) is None  # still trying: keep waiting
    assert isinstance(fault(pulling, at_deadline=True), InfraFault)
    gave_up = info(phase="failed", reason="ImagePullBackOff", message="i/o timeout")  # after 300 s, SRV says failed
    assert isinstance(fault(gave_up), InfraFault)


def test_never_scheduled_is_infrastructure_and_never_started_healthy_is_the_miners():
    assert fault(info(phase="scheduling")) is None
    assert isinstance(fault(info(phase="scheduling"), at_deadline=True), InfraFault)
    assert isinstance(fault(info(state="Pending", phase=None), at_deadline=True), InfraFault)
    slow = fault(info(phase="health_check", container_state="running"), at_deadline=True)
    assert isinstance(slow, MinerFault) and "health_check" in slow.detail


def test_a_failed_api_state_without_a_container_story_is_basilicas():
    f = fault(info(state="Failed", phase="pending", message_top="creating the Service failed"))
    assert isinstance(f, InfraFault) and "Service failed" in str(f)
