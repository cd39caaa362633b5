"""Whose fault is a deployment that is not serving? Pure: from what Basilica says about it, by cause.

Every reason the last public server's operator can produce (cathedral cb85814f
`user_deployment_controller.rs` phase_detection: `is_pulling_image`, `is_failed`, `determine_phase`),
and the ways Kubernetes stops a pod from outside (eviction, preemption, node loss and shutdown,
deadline), in both server generations: with container states, and with only phase and events."""

from __future__ import annotations

import pytest

from subnet.compute.deployments import ContainerState, DeploymentEvent, DeploymentInfo, PodState
from subnet.compute.start_budget import StartBudget
from subnet.protocol import FaultKind, InfraFault, MinerFault
from subnet.runtime.basilica_judge import judge, judge_death

BUDGET = StartBudget(total_s=600, boot_s=60, route_s=120, settle_s=30)


def info(phase=None, *containers, state="Active", ready=0, pods=(), message=None):
    return DeploymentInfo("id", "sn-x", state, "https://x", ready=ready, desired=1, phase=phase,
                          containers=tuple(containers), pods=tuple(pods), message=message)


def waiting(reason, message="", restarts=0):
    return ContainerState("waiting", reason, message, restarts)


def terminated(reason, message="", restarts=0):
    return ContainerState("terminated", reason, message, restarts)


def fault(i, events=(), **kw):
    verdict = judge(i, events, budget=BUDGET, **kw)
    return None if verdict is None else verdict.fault


def miner(f, kind=FaultKind.START_FAILED):
    return isinstance(f, MinerFault) and f.kind is kind


# ---- the container failed by itself: the miner, with its last log line -------------------------

@pytest.mark.parametrize("container", [
    waiting("CrashLoopBackOff", "back-off 40s restarting failed container", 3),
    waiting("Error", restarts=1),
    waiting("CreateContainerError", "exec: \"python\": executable file not found in $PATH"),
    waiting("CreateContainerConfigError", "container has runAsNonRoot and image will run as root"),
    waiting("RunContainerError", "exec format error"),
    terminated("OOMKilled", restarts=0),
    terminated("Completed"),  # an Actor server that exits at start
    terminated("Error", restarts=2),  # exited, restarted, exited again
])
@pytest.mark.parametrize("state", ["Active", "Pending", "Failed"])  # SRV's DB state, the CR's, the CR's failed
def test_a_container_crash_is_the_miners_fault_with_its_last_line(container, state):
    f = fault(info("failed", container, state=state), last_log="ModuleNotFoundError: No module named 'x'")
    assert miner(f) and "ModuleNotFoundError" in f.detail


def test_a_crash_seen_only_through_events_is_the_miners_too():
    """The public server sends no container states: the kubelet's BackOff event is the evidence."""
    backoff = DeploymentEvent("BackOff", "Back-off restarting failed container app in pod x-7d9f", "Warning")
    assert miner(fault(info("failed"), (backoff,), last_log="SyntaxError"))


def test_a_gpu_runtime_failure_while_creating_the_container_is_the_nodes():
    broken = waiting("CreateContainerError", "failed to create containerd task: nvidia-container-cli: initialization error")
    assert fault(info("failed", broken)) is None  # not the image's; not yet proven either
    assert isinstance(fault(info("failed", broken), settled=True), InfraFault)


# ---- pulls ------------------------------------------------------------------------------------

@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "PullBackOff", "Pulling"])
def test_a_pull_the_registry_says_cannot_exist_is_the_miners_at_once(reason):
    f = fault(info("pulling", waiting(reason, "manifest unknown: manifest unknown")))
    assert miner(f, FaultKind.IMAGE_MISSING) and "manifest unknown" in f.detail


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff"])
def test_a_failing_pull_is_infrastructure_once_the_operator_gives_up_after_300s(reason):
    pulling = info("pulling", waiting(reason, "dial tcp: i/o timeout"))
    assert fault(pulling) is None  # the operator keeps pulling for 300 s: keep waiting
    assert isinstance(fault(info("failed", waiting(reason, "dial tcp: i/o timeout"))), InfraFault)
    assert isinstance(fault(pulling, at_deadline=True), InfraFault)


def test_a_pull_failure_seen_only_through_events():
    event = DeploymentEvent("Failed", 'Failed to pull image "r/x@sha256:..": not found', "Warning")
    assert miner(fault(info("pulling"), (event,)), FaultKind.IMAGE_MISSING)


# ---- the pod was stopped from outside: infrastructure, never the miner -------------------------

EVICTED = DeploymentEvent("Evicted", "The node was low on resource: memory. Threshold quantity: 100Mi, "
                                     "available: 42Mi. ", "Warning")


@pytest.mark.parametrize("evidence", [
    {"events": (EVICTED,), "containers": (terminated("ContainerStatusUnknown"),)},
    {"events": (EVICTED,), "containers": (terminated("Error"),)},  # killed, looks like an exit
    {"events": (DeploymentEvent("Evicted", "The node had condition: [DiskPressure]. "),)},
    {"events": (DeploymentEvent("Preempted", "Preempted by u-x/big-job on node n1"),)},
    {"events": (DeploymentEvent("TaintManagerEviction", "Marking for deletion Pod u-1/x"),)},
    {"events": (DeploymentEvent("NodeNotReady", "Node is not ready"),)},
    {"events": (DeploymentEvent("DeadlineExceeded", "Pod was active on the node longer than the specified deadline"),)},
    {"pods": (PodState("x", "Evicted"),)},
    {"pods": (PodState("x", "NodeLost"),)},
    {"pods": (PodState("x", "UnexpectedAdmissionError"),)},
    {"containers": (terminated("Error", "Pod was terminated in response to imminent node shutdown."),)},
])
def test_a_pod_stopped_from_outside_is_infrastructure(evidence):
    i = info("failed", *evidence.get("containers", ()), pods=evidence.get("pods", ()))
    f = fault(i, evidence.get("events", ()), last_log="serving on :8000")
    assert isinstance(f, InfraFault) and "stopped" in str(f)


def test_an_eviction_for_the_containers_own_storage_is_the_miners():
    own = DeploymentEvent("Evicted", 'Container app exceeded its local ephemeral storage limit "1Gi". ')
    assert miner(fault(info("failed"), (own,)))


def test_a_failed_pod_without_a_crash_is_infrastructure_once_the_evidence_settles():
    """restartPolicy Always: a container that exits is restarted; a pod that stays Failed was stopped."""
    spot = info("failed", terminated("Error"), waiting("ContainerCreating"))  # SIGTERM at node shutdown, a replacement
    assert fault(spot) is None  # a first crash looks the same until the kubelet restarts it
    assert isinstance(fault(spot, settled=True), InfraFault)
    assert isinstance(fault(info("failed"), settled=True), InfraFault)  # the public server: phase only


def test_the_api_failing_to_create_the_resources_is_basilicas():
    f = fault(info("pending", state="Failed", message="K8s resource creation failed: quota"))
    assert isinstance(f, InfraFault) and "quota" in str(f)


# ---- the start budget: Basilica's time vs the Actor's own -------------------------------------

@pytest.mark.parametrize("phase", ["pending", "scheduling", "pulling", "initializing", "storage_sync", "starting", None])
def test_not_serving_at_the_budget_without_ever_running_is_infrastructure(phase):
    assert fault(info(phase)) is None
    f = fault(info(phase), at_deadline=True)
    assert isinstance(f, InfraFault) and "600s start budget" in str(f)


def test_an_actor_that_runs_but_never_answers_is_the_miners_after_its_own_allowance():
    running = info("health_check", ContainerState("running"))
    assert fault(running, running_for=59) is None
    f = fault(running, running_for=60, last_log="still loading")
    assert miner(f) and "60s after its container started" in f.detail and "still loading" in f.detail
    ready = info("ready", ContainerState("running"), ready=1)  # its port accepts: the route gets its time too
    assert fault(ready, running_for=100) is None and miner(fault(ready, running_for=180))


def test_an_actor_that_started_running_late_is_never_blamed_for_basilicas_minutes():
    late = info("health_check", ContainerState("running"))
    assert isinstance(fault(late, running_for=5, at_deadline=True), InfraFault)


# ---- mid-round: a deployment whose calls fail -------------------------------------------------

def death(i, events=(), **kw):
    verdict = judge_death(i, events, **kw)
    return None if verdict is None else verdict.fault


def test_a_deployment_still_serving_leaves_the_fault_with_the_actor():
    assert death(info("ready", ContainerState("running"), ready=1)) is None


@pytest.mark.parametrize("case", [
    info("failed", terminated("ContainerStatusUnknown"), waiting("ContainerCreating")),  # evicted (today)
    info("scheduling"),  # preempted: victim deleted, replacement unscheduled, no events left
    info("starting", waiting("ContainerCreating")),  # node lost: replacement pulling again
])
def test_a_deployment_that_died_from_outside_is_infrastructure(case):
    f = death(case, (EVICTED,) if case.phase == "failed" else ())
    assert isinstance(f, InfraFault) and "mid-round" in str(f)


def test_a_crash_mid_round_is_the_miners_and_an_unsettled_exit_waits():
    f = death(info("failed", waiting("CrashLoopBackOff", restarts=1)), last_log="CUDA out of memory")
    assert isinstance(f, MinerFault) and f.kind is FaultKind.UNREACHABLE and "CUDA out of memory" in f.detail
    assert death(info("failed", terminated("OOMKilled")), last_log="") .kind is FaultKind.UNREACHABLE
    exited = info("failed", terminated("Error"))
    assert death(exited) is None and isinstance(death(exited, settled=True), InfraFault)
