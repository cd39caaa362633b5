"""The twin's `/deployments` routes, behaving as the real Basilica API does.

Sources (cited per behaviour below):
- SDK  = basilica-sdk 0.36.8 on PyPI: `basilica/_basilica.pyi`, `basilica/__init__.py`, `basilica/_deployment.py`;
  the camelCase field names are those compiled into `basilica/_basilica.abi3.so` (`DeploymentResponse`, 22
  fields; `DeploymentSummary`, 9).
- SRV  = the last public Basilica server, repository bigailabs/cathedral at cb85814f (Dec 2025, the parent of
  "split backend services to private repo"; a611843f, Jan 2026, changes none of what is used here but line
  numbers in the operator): `crates/basilica-api/src/api/routes/deployments/handlers.rs`, `.../types.rs`,
  `.../db/instance_mappings.rs`, `crates/basilica-api/src/error.rs`, `crates/basilica-operator/src/crd/user_deployment.rs`,
  `.../controllers/user_deployment_controller.rs`, `crates/basilica-operator/src/labels.rs`.
The current production server is private. Two generations are served (`Generation`): today's, as the SDK
reads it (names, tokens, container states), and SRV's (none of those fields; the SDK then fills "" and True).
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from subnet.twins.basilica_profile import Fate

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # SRV types.rs `validate_instance_name`


IMAGE_PULL_FAILURE_TIMEOUT_S = 300.0  # SRV controller 1203 `IMAGE_PULL_FAILURE_TIMEOUT_SECS`


def normalize_gpu_model(model: str) -> str:
    """SRV operator `labels.rs` 155-166 `normalize_gpu_model`: trim, upper-case, keep letters and digits only
    ("rtx-4090" → "RTX4090", "A100-40GB" → "A10040GB"). Applied to the REQUESTED models only (controller 432)."""
    return "".join(ch for ch in model.strip().upper() if ch.isalnum()) or "UNKNOWN"


@dataclass(frozen=True)
class Generation:
    """Which server the twin plays. `today`: what basilica-sdk 0.36.8 reads. `srv`: the public server's
    answers (types.rs 160-232: no `friendlyName`, `public`, `containerStatuses`; listing items are
    `from_record_with_status`, handlers.rs 1168-1210). Share tokens: SRV had none at all (a private
    deployment there had no way to be called with a secret); `share_tokens=False` plays that, and the
    `srv` preset keeps today's tokens so a round can run against SRV's listings and states."""

    list_names: bool = True
    container_statuses: bool = True
    echo_public: bool = True
    share_tokens: bool = True

    @classmethod
    def named(cls, name: str) -> Generation:
        return {"today": cls(), "srv": cls(False, False, False, True)}[name]


@dataclass(frozen=True)
class Node:
    """A GPU node: its `basilica.ai/gpu-model` label, `basilica.ai/gpu-memory-gb` and `basilica.ai/gpu-count`."""

    gpu_label: str
    gpu_memory_gb: int
    gpus: int = 8


# Secure-cloud nodes the autoscaler provisions are labelled normalize(offering gpu_type) (SRV autoscaler
# `node_pool_controller.rs` 1539-1545, "normalized base model"): so "TESLA V100" → "TESLAV100", "RTX-A4000" → "RTXA4000".
DEFAULT_NODES = (Node("TESLAV100", 16), Node("RTXA4000", 16), Node("RTXA6000", 48), Node("H100", 80))


@dataclass
class TwinDeployment:
    id: str
    friendly_name: str
    spec: dict
    url: str
    created_at: str
    node: Node | None
    share_token: str | None = field(default=None, repr=False)
    polls: int = 0
    logs: list[str] = field(default_factory=list)
    born: float = field(default_factory=time.monotonic)
    fate: Fate = field(default_factory=Fate)
    serving_at: float | None = None  # when its Actor first served
    disrupted: str | None = None  # Disruption.kind, once it happened

    @property
    def private(self) -> bool:
        return self.spec.get("public") is False

    @property
    def pod(self) -> str:
        return f"{self.id[:8]}-deployment-7d9f-x2k4"


def schedule(spec: dict, nodes: tuple[Node, ...]) -> Node | None:
    """SRV operator `build_node_affinity` (controller 412-475): `basilica.ai/gpu-model In normalize(models)`,
    compared with the node's label AS WRITTEN (a Kubernetes `In` match), gpu-count >= count, gpu-memory-gb >=
    minGpuMemoryGb. No match → the pod stays unscheduled (no timeout). The affinity is built from the
    request's GpuSpec (`build_node_affinity(gpu: &GpuSpec)`): a request without GPUs gets no GPU term, so
    here any node serves it (which nodes the private server gives such pods is open: docs/operator.md)."""
    gpus = (spec.get("resources") or {}).get("gpus") or {}
    models = {normalize_gpu_model(m) for m in gpus.get("model") or []}
    min_memory = gpus.get("minGpuMemoryGb") or 0
    count = gpus.get("count") or 0
    for node in nodes:
        if models and node.gpu_label not in models:
            continue
        if node.gpu_memory_gb < min_memory or node.gpus < count:
            continue
        return node
    return None


def validate(body: dict) -> str | None:
    """SRV `types.rs` `validate_instance_name` 235-263, `validate_image` 266-286, `validate_gpu_requirements`
    369-430: any non-empty model string, at most 10. Messages are `ApiError::InvalidRequest`'s."""
    name = body.get("instanceName") or ""
    if not _NAME.match(name) or len(name) > 63:
        return (f"instance_name '{name}' must be a valid DNS label (lowercase alphanumeric and hyphens, "
                "cannot start or end with hyphen)")
    image = body.get("image") or ""
    if not image or len(image) > 1024 or any(c in image for c in ";&|"):
        return "image contains invalid characters (;, &, |)" if image else "image cannot be empty"
    # SRV types.rs `validate_resources`: `if let Some(ref gpus) = resources.gpus` -- GPU requirements are
    # checked only when present, so a CPU-only deployment (no `resources.gpus`) is valid.
    gpus = (body.get("resources") or {}).get("gpus")
    if gpus is not None:
        count = int(gpus.get("count") or 0)
        if not 1 <= count <= 8:
            return "GPU count must be at least 1" if count < 1 else f"GPU count {count} exceeds maximum of 8"
        models = gpus.get("model") or []
        if not models:
            return "GPU model list cannot be empty"
        if len(models) > 10:
            return f"GPU model list too long: {len(models)} models (max 10)"
        if any(not m for m in models):
            return "GPU model name cannot be empty"
        memory = gpus.get("minGpuMemoryGb")
        if memory is not None and not 1 <= int(memory) <= 256:
            return "Minimum GPU memory must be at least 1 GB"
    return None


def new_deployment(body: dict, url_template: str, nodes: tuple[Node, ...], now: str, dep_id: str | None = None,
                   fate: Fate | None = None, share_tokens: bool = True) -> TwinDeployment:
    dep_id = dep_id or str(uuid.uuid4())
    d = TwinDeployment(id=dep_id, friendly_name=body["instanceName"], spec=body,
                       url=url_template.replace("{name}", dep_id), created_at=now, node=schedule(body, nodes),
                       fate=fate or Fate())
    d.logs.append(f"twin: scheduled on {d.node.gpu_label}" if d.node else "twin: no node matches the GPU request")
    if d.private and share_tokens:
        d.share_token = secrets.token_urlsafe(16)
    return d


@dataclass(frozen=True)
class Status:
    phase: str  # SRV operator `DeploymentPhase` (snake_case, crd/user_deployment.rs 258-300)
    ready: bool
    containers: tuple[dict, ...] = ()
    message: str | None = None  # SRV: the last phase-history message (`build_progress_message`)
    pods: tuple[dict, ...] = ()
    events: tuple[dict, ...] = ()  # newest first, as SRV handlers.rs 1381-1412 sends them

    def state(self, model: str) -> str:
        """`srv`: the API's DB state, "Active" as soon as the resources exist, whatever the pods do (SRV
        handlers.rs `create_deployment` answers state "Active", replicas.ready 0, phase "pending").
        `operator`: the CR state mapping (SRV `crd/user_deployment.rs` `to_state_string`): ready → Active,
        failed → Failed, every other phase → Pending. The private server may do either."""
        if model == "srv":
            return "Active"
        return {"ready": "Active", "failed": "Failed", "terminating": "Terminating"}.get(self.phase, "Pending")


# SRV controller `build_progress_message`.
_MESSAGES = {"pending": "Waiting for resources", "scheduling": "Waiting for node assignment",
             "pulling": "Pulling container image", "starting": "Starting container",
             "health_check": "Waiting for health check", "ready": "Deployment ready", "failed": "Deployment failed"}


def _status(phase: str, ready: bool, containers: tuple[dict, ...] = (), pods: tuple[dict, ...] = (),
            events: tuple[dict, ...] = ()) -> Status:
    return Status(phase, ready, containers, _MESSAGES.get(phase), pods, events)


def simulated_status(d: TwinDeployment, ready_after_polls: int) -> Status:
    if d.node is None:
        return _status("scheduling", False)
    pulling = _event("Normal", "Pulling", f'Pulling image "{d.spec.get("image", "")}"')
    if d.polls >= ready_after_polls:
        return _status("ready", True, _running(d), _pods(d, "Running"),
                       (_event("Normal", "Started", "Started container app"), pulling))
    return _status("starting", False, _waiting(d, "ContainerCreating", ""), _pods(d, "Pending"), (pulling,))


def hosted_status(d: TwinDeployment, hosted: Any, now: float) -> Status:
    """From the deployment's fate and what the ActorHost says about its really-running Actor, phased
    as SRV's `determine_phase` (controller 1214-1287): an unscheduled pod → scheduling; a healthy pull
    → starting (the kubelet's waiting reason is ContainerCreating, which `is_pulling_image` does not
    match); a pull failure → pulling for 300 s, then failed; a crash loop → failed at once."""
    age = now - d.born
    if d.disrupted:
        return disrupted_status(d)
    if d.node is None or age < d.fate.schedule_s:
        return _status("scheduling", False, pods=({"name": d.pod, "status": "Pending"},),
                       events=(_event("Warning", "FailedScheduling", "0/4 nodes are available: "
                                      "4 node(s) didn't match Pod's node affinity/selector."),) if d.node is None else ())
    pulling = _event("Normal", "Pulling", f'Pulling image "{d.spec.get("image", "")}"')
    if hosted is None or hosted.state == "starting":
        return _status("starting", False, _waiting(d, "ContainerCreating", ""), _pods(d, "Pending"), (pulling,))
    if hosted.state == "running":
        return _status("ready", True, _running(d), _pods(d, "Running"),
                       (_event("Normal", "Started", "Started container app"), pulling))
    if hosted.kind == "infra":  # the image could not be had: Kubernetes reports a pull failure
        phase = "failed" if age > IMAGE_PULL_FAILURE_TIMEOUT_S else "pulling"
        message = hosted.error or ""
        return _status(phase, False, _waiting(d, "ImagePullBackOff", message), _pods(d, "Pending"),
                       (_event("Normal", "BackOff", f'Back-off pulling image "{d.spec.get("image", "")}"'),
                        _event("Warning", "Failed", f'Failed to pull image "{d.spec.get("image", "")}": {message}')))
    # kubelet `BackOffStartContainer` event: "Back-off restarting failed container <c> in pod <pod>"
    return _status("failed", False, _waiting(d, "CrashLoopBackOff", hosted.error or "", restarts=3),
                   _pods(d, "Running"),
                   (_event("Warning", "BackOff", f"Back-off restarting failed container app in pod {d.pod}"),))


def disrupted_status(d: TwinDeployment) -> Status:
    """After a disruption (see `basilica_profile.py`): the replacement pod waits for a node."""
    replacement = {"podName": f"{d.pod}-r", "containerName": "app", "state": "waiting",
                   "reason": "ContainerCreating", "message": None, "restartCount": 0}
    pending = {"name": f"{d.pod}-r", "status": "Pending"}
    if d.disrupted == "preempted":  # the victim is deleted with its events; only the replacement is left
        return _status("scheduling", False, pods=(pending,))
    if d.disrupted == "evicted":
        killed = {"podName": d.pod, "containerName": "app", "state": "terminated",
                  "reason": "ContainerStatusUnknown",
                  "message": "The container could not be located when the pod was terminated", "restartCount": 0}
        return _status("failed", False, (killed, replacement), ({"name": d.pod, "status": "Failed"}, pending),
                       (_event("Warning", "Evicted", "The node was low on resource: memory. Threshold quantity: "
                                                     "100Mi, available: 42Mi. "),
                        _event("Normal", "Killing", "Stopping container app")))
    stopped = {"podName": d.pod, "containerName": "app", "state": "terminated", "reason": "Error",
               "message": None, "restartCount": 0}  # SIGTERM at node shutdown: exit 143, no restart
    return _status("failed", False, (stopped, replacement), ({"name": d.pod, "status": "Failed"}, pending),
                   (_event("Normal", "Killing", "Stopping container app"),))


def _running(d: TwinDeployment) -> tuple[dict, ...]:
    return ({"podName": d.pod, "containerName": "app", "state": "running", "reason": None, "message": None,
             "restartCount": 0},)


def _waiting(d: TwinDeployment, reason: str, message: str, restarts: int = 0) -> tuple[dict, ...]:
    return ({"podName": d.pod, "containerName": "app", "state": "waiting", "reason": reason,
             "message": message or None, "restartCount": restarts},)


def _pods(d: TwinDeployment, status: str) -> tuple[dict, ...]:
    return ({"name": d.pod, "status": status},)


def _event(kind: str, reason: str, message: str) -> dict:
    """SRV `k8s/types.rs` `DeploymentEventDto`: {type, reason, message, count, last_timestamp}."""
    return {"type": kind, "reason": reason, "message": message, "count": 1,
            "last_timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def summary_view(d: TwinDeployment, status: Status, state_model: str = "srv", gen: Generation = Generation()) -> dict:
    """`DeploymentSummary`: 9 fields today, no phase, no token; SRV's listing has neither name nor `public`."""
    desired = d.spec.get("replicas", 1)
    view = {"instanceName": d.id, "state": status.state(state_model), "url": d.url,
            "replicas": {"desired": desired, "ready": desired if status.ready else 0}, "createdAt": d.created_at}
    if gen.list_names:
        view["friendlyName"] = d.friendly_name
    if gen.echo_public:
        view |= {"public": not d.private, "websocket": None, "publicMetadata": bool(d.spec.get("publicMetadata"))}
    return view


def detail_view(d: TwinDeployment, status: Status, with_token: bool = False, state_model: str = "srv",
                gen: Generation = Generation()) -> dict:
    """`DeploymentResponse`; the share token only when `with_token` (the create answer)."""
    view = summary_view(d, status, state_model, gen) | {
        "userId": "twin-user", "namespace": "u-twin-user", "phase": status.phase, "message": status.message,
        "updatedAt": d.created_at, "pods": list(status.pods) if gen.container_statuses else None, "progress": None,
    }
    if gen.container_statuses:  # today's operator exposes them (SDK `ContainerStatusSnapshot`); SRV does not
        view |= {"image": d.spec.get("image", ""), "containerStatuses": list(status.containers),
                 "phaseProgress": sum(c.get("restartCount", 0) for c in status.containers), "distributed": None}
    if with_token and d.share_token:
        view |= {"shareToken": d.share_token, "shareUrl": f"{d.url}?token={d.share_token}"}
    return view
