"""Whose fault is a Basilica deployment that is not serving: the miner's image, or Basilica? Pure.

By cause, from what Basilica says: the deployment's phase and containers (`GET /deployments/{id}`),
the pods' Kubernetes events (`GET /deployments/{id}/events`, both server generations), the
container's last log line. Sources: the operator of the last public server, bigailabs/cathedral
cb85814f `crates/basilica-operator/src/controllers/user_deployment_controller.rs` (phase_detection
1199-1470: `determine_phase` 1214-1287, `is_pulling_image` 1300-1327, `is_failed` 1381-1426), and
the kubelet's own reasons and messages (kubernetes `pkg/kubelet/events/event.go`,
`pkg/kubelet/eviction/helpers.go`, `pkg/kubelet/nodeshutdown`, the scheduler's preemption event).

- The container failed by itself → the miner (`start_failed` before it served, `unreachable`
  mid-round), with its last log line: waiting CrashLoopBackOff / Error / CreateContainerError /
  CreateContainerConfigError / RunContainerError (`is_failed` 1381-1426), terminated OOMKilled (the
  operator sets memory limit = request, 180-215: only the container's own use kills it), terminated
  Completed (an Actor server that exits at start), terminated Error after a restart, or the
  kubelet's "Back-off restarting failed container" event (the only crash signal a server without
  `containerStatuses` gives).
- The registry says the image does not exist → the miner (`image_missing`).
- The pod was stopped from outside → infrastructure, never the miner: evicted under node pressure
  ("The node was low on resource: ..."), preempted, the node lost or shut down (a spot reclaim),
  DeadlineExceeded, an admission error. A deployment's pods run with restartPolicy Always, so a pod
  in phase Failed is one the kubelet or the cluster stopped; a container that exits is restarted
  instead. Phase "failed" without any container crash is therefore infrastructure, once the
  evidence had time to settle (a first exit looks like a kill until the kubelet restarts it).
  Eviction for exceeding the container's OWN limits (ephemeral storage, emptyDir) is the miner's.
- Not serving when the start budget ran out: infrastructure if its container never ran for its
  boot allowance (scheduling, pulling, creating — all Basilica's time), the miner's if it ran that
  long and never answered /health.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from subnet.compute.deployments import DeploymentEvent, DeploymentInfo
from subnet.compute.start_budget import StartBudget
from subnet.protocol import FaultKind, InfraFault, MinerFault
from subnet.util.text import one_line

# Container reasons that mean the container failed by itself (operator `is_failed`, 1381-1426).
CRASH_WAITING = {"crashloopbackoff", "error", "createcontainererror", "createcontainerconfigerror",
                 "runcontainererror", "containercannotrun"}
CRASH_TERMINATED = {"oomkilled", "completed"}  # "error" only after a restart: see _crash
# Pull reasons (operator `is_pulling_image` 1300-1327; kubelet ErrImageNeverPull, InvalidImageName).
PULL_REASONS = {"pulling", "pullbackoff", "imagepullbackoff", "errimagepull", "invalidimagename", "errimageneverpull"}
NOT_FOUND = ("not found", "manifest unknown", "does not exist", "no such image", "name unknown", "404")
# A container runtime error naming the node's GPU stack is the node's, not the image's.
GPU_RUNTIME = ("nvidia-container", "nvml", "nvidia driver", "gpu device", "device plugin")
# Pod-level reasons for a pod stopped from outside: kubelet eviction ("Evicted"), graceful node
# shutdown (pod reason "Terminated" with "Pod was terminated in response to imminent node
# shutdown.", rejected "NodeShutdown"), scheduler preemption (event "Preempted"; the victim is
# deleted and replaced), the node lifecycle controller ("NodeNotReady", "NodeLost",
# "TaintManagerEviction"), activeDeadlineSeconds ("DeadlineExceeded"), admission ("UnexpectedAdmissionError",
# "OutOf<resource>"), a container the kubelet could not find any more ("ContainerStatusUnknown").
OUTSIDE_REASONS = {"evicted", "preempted", "preempting", "nodeshutdown", "nodenotready", "nodelost",
                   "taintmanagereviction", "deadlineexceeded", "unexpectedadmissionerror", "containerstatusunknown"}
SHUTDOWN_MESSAGE = "imminent node shutdown"
# Kubelet eviction messages that name the container's own limit (eviction/helpers.go).
OWN_LIMIT = ("exceeded its local ephemeral storage limit", "ephemeral local storage usage exceeds",
             "usage of emptydir volume")
BACKOFF_CRASH = "restarting failed container"  # kubelet "BackOff": Back-off restarting failed container X in pod Y
STUCK = {"pending": "waiting for resources", "scheduling": "no node with the requested GPU was assigned",
         "pulling": "pulling its image", "initializing": "initializing", "storage_sync": "syncing storage",
         "starting": "pulling its image or creating its container", "": "no phase reported"}


@dataclass(frozen=True)
class Verdict:
    fault: Exception  # MinerFault or InfraFault


@dataclass(frozen=True)
class Evidence:
    crash: str = ""  # how the container failed by itself
    pull: str = ""  # a pull failure's message ("" = none)
    pull_missing: bool = False
    outside: str = ""  # how the pod was stopped from outside
    own_limit: str = ""  # evicted for exceeding its own limits
    ambiguous_exit: bool = False  # terminated Error, never restarted: a kill, or a first crash


def evidence(info: DeploymentInfo, events: Sequence[DeploymentEvent] = ()) -> Evidence:
    crash = _crash(info, events)
    pull_msgs = [c.message or c.reason for c in info.containers if c.reason.lower() in PULL_REASONS]
    pull_msgs += [e.message for e in events if e.reason.lower() in ("failed", "backoff")
                  and "pull" in e.message.lower()]
    outside, own = _outside(info, events)
    ambiguous = any(c.state.lower() == "terminated" and c.reason.lower() == "error" and c.restart_count == 0
                    for c in info.containers)
    return Evidence(crash=crash, pull=one_line(pull_msgs[0]) if pull_msgs else "",
                    pull_missing=any(w in m.lower() for m in pull_msgs for w in NOT_FOUND),
                    outside=outside, own_limit=own, ambiguous_exit=ambiguous)


def _crash(info: DeploymentInfo, events: Sequence[DeploymentEvent]) -> str:
    for c in info.containers:
        reason, state = c.reason.lower(), c.state.lower()
        gpu_stack = any(w in c.message.lower() for w in GPU_RUNTIME)
        if state == "waiting" and reason in CRASH_WAITING and not gpu_stack:
            return c.reason + (f" after {c.restart_count} restarts" if c.restart_count else "")
        if state == "terminated" and (reason in CRASH_TERMINATED or (reason == "error" and c.restart_count > 0)):
            return "exited at start" if reason == "completed" else c.reason
    if any(e.reason.lower() == "backoff" and BACKOFF_CRASH in e.message.lower() for e in events):
        return "CrashLoopBackOff"
    return ""


def _outside(info: DeploymentInfo, events: Sequence[DeploymentEvent]) -> tuple[str, str]:
    """(how the pod was stopped from outside, or ""; an eviction for its own limits, or "")."""
    said = [(e.reason, e.message) for e in events] + [(p.status, "") for p in info.pods]
    said += [(c.reason, c.message) for c in info.containers if c.state.lower() == "terminated"]
    for reason, message in said:
        text = message.lower()
        if reason.lower() == "evicted" and any(w in text for w in OWN_LIMIT):
            return "", one_line(message)
        if reason.lower() in OUTSIDE_REASONS or SHUTDOWN_MESSAGE in text:
            return one_line(f"{reason}: {message}" if message else reason), ""
    return "", ""


def judge(info: DeploymentInfo, events: Sequence[DeploymentEvent] = (), *, budget: StartBudget = StartBudget(),
          running_for: float | None = None, at_deadline: bool = False, settled: bool = False,
          last_log: str = "") -> Verdict | None:
    """Whose fault a deployment that is not (yet) serving is, or None to keep waiting.

    `running_for`: seconds since Basilica first showed its container running (None: never);
    `settled`: the deployment has looked this way long enough for the kubelet to have restarted a
    crashed container (or the start budget ran out)."""
    seen = evidence(info, events)
    phase = (info.phase or "").lower()
    tail = f": {one_line(last_log)}" if last_log else ""
    if seen.crash:
        return Verdict(MinerFault(FaultKind.START_FAILED, f"deployment {seen.crash}{tail}"))
    if seen.pull_missing:
        return Verdict(MinerFault(FaultKind.IMAGE_MISSING, f"image cannot be pulled: {seen.pull}"))
    if seen.own_limit:
        return Verdict(MinerFault(FaultKind.START_FAILED, f"evicted for exceeding its own limits: {seen.own_limit}"))
    if seen.outside:
        return Verdict(InfraFault(f"Basilica stopped the deployment's pod ({seen.outside})"))
    if seen.pull and (phase == "failed" or at_deadline):
        return Verdict(InfraFault(f"deployment could not pull its image: {seen.pull}"))
    if phase == "failed" and not seen.pull and (settled or at_deadline):
        return Verdict(InfraFault("deployment failed without a container crash (its pod was stopped from outside: "
                                  "evicted, preempted, node lost or shut down)"))
    if info.state.lower() == "failed" and phase != "failed":  # SRV: the API could not create its resources
        return Verdict(InfraFault(f"Basilica could not create the deployment: {one_line(info.message or '')}"))
    allowance = budget.allowance(phase)
    if running_for is not None and running_for >= allowance and phase != "failed":
        where = "its port accepts, /health through its URL never answered" if phase == "ready" else f"phase {phase or '?'}"
        return Verdict(MinerFault(FaultKind.START_FAILED, f"deployment not healthy {allowance:g}s after its "
                                                          f"container started ({where}){tail}"))
    if not at_deadline:
        return None
    stuck = STUCK.get(phase, f"phase {phase}")
    return Verdict(InfraFault(f"deployment not serving within the {budget.total_s:g}s start budget ({stuck}); "
                              "its Actor never ran long enough to be judged"))


def judge_death(info: DeploymentInfo, events: Sequence[DeploymentEvent] = (), *, settled: bool = False,
                last_log: str = "") -> Verdict | None:
    """A deployment whose calls started failing mid-round. None: it still serves (the failure is the
    Actor's own answer), or the evidence has not settled yet; otherwise the miner's crash
    (`unreachable`) or Basilica's doing (infrastructure: the rest of its tasks too)."""
    if info.is_ready and (info.phase or "ready").lower() in ("ready", "degraded", ""):
        return None
    seen = evidence(info, events)
    tail = f": {one_line(last_log)}" if last_log else ""
    if seen.crash or seen.own_limit:
        return Verdict(MinerFault(FaultKind.UNREACHABLE, f"the Actor died mid-round ({seen.crash or seen.own_limit}){tail}"))
    if seen.outside:
        return Verdict(InfraFault(f"Basilica stopped the deployment mid-round ({seen.outside})"))
    if seen.ambiguous_exit and not settled:
        return None
    phase = (info.phase or "").lower()
    return Verdict(InfraFault(f"the deployment stopped serving mid-round without a container crash "
                              f"(phase {phase or '?'}, {info.ready}/{info.desired} ready)"))
