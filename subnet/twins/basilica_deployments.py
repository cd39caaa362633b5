"""The twin's `/deployments` routes, behaving as the real Basilica API does.

Sources (cited per behaviour below):
- SDK  = basilica-sdk 0.36.8 on PyPI: `basilica/_basilica.pyi`, `basilica/__init__.py`, `basilica/_deployment.py`;
  the camelCase field names are those compiled into `basilica/_basilica.abi3.so` (`DeploymentResponse`, 22
  fields; `DeploymentSummary`, 9).
- SRV  = the last public Basilica server, repository bigailabs/cathedral at cb85814f (Dec 2025, the parent of
  "split backend services to private repo"): `crates/basilica-api/src/api/routes/deployments/handlers.rs`,
  `.../types.rs`, `.../db/instance_mappings.rs`, `crates/basilica-api/src/error.rs`,
  `crates/basilica-operator/src/crd/user_deployment.rs`, `.../controllers/user_deployment_controller.rs`,
  `crates/basilica-operator/src/labels.rs`, `crates/basilica-autoscaler/src/offering_matcher.rs`.
The current production server is private; where SRV and the SDK leave a fact open the twin has a switch
(`state_model`) and the product is tested both ways.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


IMAGE_PULL_FAILURE_TIMEOUT_S = 300.0  # SRV operator `phase_detection::IMAGE_PULL_FAILURE_TIMEOUT_SECS`


def normalize_gpu_model(model: str) -> str:
    """SRV operator `labels.rs` `normalize_gpu_model`: trim, upper-case, keep letters and digits only
    ("rtx-4090" → "RTX4090", "A100-40GB" → "A10040GB"); both node labels and requests go through it."""
    return "".join(ch for ch in model.strip().upper() if ch.isalnum()) or "UNKNOWN"


@dataclass(frozen=True)
class Node:
    """A GPU node: its `basilica.ai/gpu-model` label, `basilica.ai/gpu-memory-gb` and `basilica.ai/gpu-count`."""

    gpu_label: str
    gpu_memory_gb: int
    gpus: int = 8


# Secure-cloud nodes the autoscaler provisions are labelled normalize(offering gpu_type) (SRV autoscaler
# `node_pool_controller.rs`, "normalized base model"): so "TESLA V100" → "TESLAV100", "RTX-A4000" → "RTXA4000".
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

    @property
    def private(self) -> bool:
        return self.spec.get("public") is False


def schedule(spec: dict, nodes: tuple[Node, ...]) -> Node | None:
    """SRV operator `build_node_affinity`: gpu-model In normalize(models), gpu-count >= count,
    gpu-memory-gb >= minGpuMemoryGb. No match → the pod stays unscheduled (no timeout)."""
    gpus = (spec.get("resources") or {}).get("gpus") or {}
    models = {normalize_gpu_model(m) for m in gpus.get("model") or []}
    min_memory = gpus.get("minGpuMemoryGb") or 0
    count = gpus.get("count") or 0
    for node in nodes:
        if models and normalize_gpu_model(node.gpu_label) not in models:
            continue
        if node.gpu_memory_gb < min_memory or node.gpus < count:
            continue
        return node
    return None


def validate(body: dict) -> str | None:
    """SRV `types.rs` `validate_instance_name`, `validate_image`, `validate_gpu_requirements`."""
    name = body.get("instanceName") or ""
    if not _NAME.match(name):
        return f"Invalid request: instance_name '{name}' must be a valid DNS label"
    image = body.get("image") or ""
    if not image or len(image) > 1024 or any(c in image for c in ";&|"):
        return "Invalid request: image must be a non-empty reference without shell metacharacters"
    gpus = (body.get("resources") or {}).get("gpus")
    if gpus is not None:
        if not 1 <= int(gpus.get("count") or 0) <= 8:
            return "Invalid request: GPU count must be between 1 and 8"
        if not gpus.get("model"):
            return "Invalid request: GPU model list cannot be empty"
        memory = gpus.get("minGpuMemoryGb")
        if memory is not None and not 1 <= int(memory) <= 256:
            return "Invalid request: minGpuMemoryGb must be between 1 and 256"
    return None


def new_deployment(body: dict, url_template: str, nodes: tuple[Node, ...], now: str,
                   dep_id: str | None = None) -> TwinDeployment:
    dep_id = dep_id or str(uuid.uuid4())
    d = TwinDeployment(id=dep_id, friendly_name=body["instanceName"], spec=body,
                       url=url_template.replace("{name}", dep_id), created_at=now, node=schedule(body, nodes))
    d.logs.append(f"twin: scheduled on {d.node.gpu_label}" if d.node else "twin: no node matches the GPU request")
    if d.private:
        d.share_token = secrets.token_urlsafe(16)
    return d


@dataclass(frozen=True)
class Status:
    phase: str  # SRV operator `DeploymentPhase` (snake_case)
    ready: bool
    containers: tuple[dict, ...] = ()
    message: str | None = None  # SRV: the last phase-history message (`build_progress_message`)

    def state(self, model: str) -> str:
        """`srv`: the API's DB state, "Active" as soon as the resources exist, whatever the pods do (SRV
        handlers.rs `create_deployment` answers state "Active", replicas.ready 0, phase "pending").
        `operator`: the CR state mapping (SRV `crd/user_deployment.rs` `to_state_string`): ready → Active,
        failed → Failed, every other phase → Pending. The private server may do either."""
        if model == "srv":
            return "Active"
        return {"ready": "Active", "failed": "Failed", "terminating": "Terminating"}.get(self.phase, "Pending")


_MESSAGES = {"scheduling": "Waiting for node assignment", "pulling": "Pulling container image",
             "starting": "Starting containers", "ready": "Deployment ready", "failed": "Deployment failed"}


def _status(phase: str, ready: bool, containers: tuple[dict, ...] = ()) -> Status:
    return Status(phase, ready, containers, _MESSAGES.get(phase))


def simulated_status(d: TwinDeployment, ready_after_polls: int) -> Status:
    if d.node is None:
        return _status("scheduling", False)
    if d.polls >= ready_after_polls:
        return _status("ready", True, _running())
    return _status("starting", False, _waiting("ContainerCreating", ""))


def hosted_status(d: TwinDeployment, hosted: Any, age_s: float) -> Status:
    """From what the ActorHost says about the really-running Actor, phased as SRV's `determine_phase`:
    a pull failure is `pulling` for 300 s, then `failed`; a crash loop is `failed` at once."""
    if d.node is None:
        return _status("scheduling", False)
    if hosted is None or hosted.state == "starting":
        return _status("starting", False, _waiting("ContainerCreating", ""))
    if hosted.state == "running":
        return _status("ready", True, _running())
    if hosted.kind == "infra":  # the image could not be had: Kubernetes reports a pull failure
        phase = "failed" if age_s > IMAGE_PULL_FAILURE_TIMEOUT_S else "pulling"
        return _status(phase, False, _waiting("ImagePullBackOff", hosted.error or ""))
    return _status("failed", False, _waiting("CrashLoopBackOff", hosted.error or "", restarts=3))


def _running() -> tuple[dict, ...]:
    return ({"podName": "pod-0", "containerName": "app", "state": "running", "reason": None, "message": None,
             "restartCount": 0},)


def _waiting(reason: str, message: str, restarts: int = 0) -> tuple[dict, ...]:
    return ({"podName": "pod-0", "containerName": "app", "state": "waiting", "reason": reason,
             "message": message or None, "restartCount": restarts},)


def summary_view(d: TwinDeployment, status: Status, state_model: str = "srv") -> dict:
    """`DeploymentSummary`: 9 fields, no phase, no token."""
    desired = d.spec.get("replicas", 1)
    return {"instanceName": d.id, "friendlyName": d.friendly_name, "state": status.state(state_model), "url": d.url,
            "replicas": {"desired": desired, "ready": desired if status.ready else 0}, "createdAt": d.created_at,
            "public": not d.private, "websocket": None, "publicMetadata": bool(d.spec.get("publicMetadata"))}


def detail_view(d: TwinDeployment, status: Status, with_token: bool = False, state_model: str = "srv") -> dict:
    """`DeploymentResponse`; the share token only when `with_token` (the create answer)."""
    view = summary_view(d, status, state_model) | {
        "userId": "twin-user", "namespace": "u-twin-user", "image": d.spec.get("image", ""),
        "phase": status.phase, "message": status.message, "updatedAt": d.created_at, "pods": None,
        "progress": None, "containerStatuses": list(status.containers),
        "phaseProgress": sum(c.get("restartCount", 0) for c in status.containers), "distributed": None,
    }
    if with_token and d.share_token:
        view |= {"shareToken": d.share_token, "shareUrl": f"{d.url}?token={d.share_token}"}
    return view
