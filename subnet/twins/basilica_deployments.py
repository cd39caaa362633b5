"""The twin's `/deployments` routes, behaving as the real Basilica API does.

Every behaviour is taken from the public source, cited where it is implemented:
- SDK = basilica-sdk 0.36.8 on PyPI (`basilica/_basilica.pyi`, `basilica/__init__.py`);
- the response field names are the camelCase serde names compiled into the SDK
  (`basilica/_basilica.abi3.so`: `DeploymentResponse` with 22 fields incl. `friendlyName`,
  `shareToken`, `shareUrl`, `containerStatuses`, `phaseProgress`; `DeploymentSummary` with 9).

What the twin does:
- POST assigns a UUID as `instanceName` and keeps our name as `friendlyName` (SDK `get_by_name`
  docstring: "rather than the UUID instance name"); it answers 201. It is NOT idempotent by name: a
  second POST with the same name creates a second deployment (nothing in the SDK promises
  otherwise, so the client must not rely on it).
- `shareToken`/`shareUrl` appear only in the create answer (SDK `DeploymentResponse.share_token`:
  "only returned on creation"); `POST /deployments/{id}/share-token` makes a new one and the old one
  stops working (SDK `RegenerateShareTokenResponse.token`: "Only returned once").
- GET/DELETE take the UUID only; our friendly name is a 404 there.
- Scheduling matches the requested GPU models against node labels and `minGpuMemoryGb` against the
  node's memory; with no matching node the deployment stays `Pending`, phase `scheduling`.
- A crash-looping container shows `state` "Pending" with phase "failed" and a container status with
  reason "CrashLoopBackOff" (SDK `ContainerStatusSnapshot.reason` lists it).
- With an `ActorHost`, a deployment's image really runs (see `deployment_host.py`) behind a front that
  checks its share token; without one, readiness is simulated after `ready_after_polls` reads.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Node:
    """A GPU node the twin can schedule on: its model label value and memory per GPU."""

    gpu_label: str
    gpu_memory_gb: int
    gpus: int = 8


# Labels as short model names, the way the SDK's examples spell them ("A100", "H100").
DEFAULT_NODES = (Node("V100", 16), Node("A4000", 16), Node("A6000", 48), Node("H100", 80))


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

    @property
    def private(self) -> bool:
        return self.spec.get("public") is False


def schedule(spec: dict, nodes: tuple[Node, ...]) -> Node | None:
    gpus = (spec.get("resources") or {}).get("gpus") or {}
    models = gpus.get("model") or []
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
    name = body.get("instanceName") or ""
    if not _NAME.match(name):
        return "instanceName must be DNS-safe (lowercase letters, digits, dashes; max 63)"
    if not body.get("image"):
        return "image is required"
    return None


def new_deployment(body: dict, url_template: str, nodes: tuple[Node, ...], now: str) -> TwinDeployment:
    dep_id = str(uuid.uuid4())
    d = TwinDeployment(id=dep_id, friendly_name=body["instanceName"], spec=body,
                       url=url_template.replace("{name}", dep_id), created_at=now, node=schedule(body, nodes))
    d.logs.append(f"twin: scheduled on {d.node.gpu_label}" if d.node else "twin: no node matches the GPU request")
    if d.private:
        d.share_token = secrets.token_urlsafe(16)
    return d


@dataclass(frozen=True)
class Status:
    state: str
    phase: str
    ready: bool
    containers: tuple[dict, ...] = ()
    message: str | None = None


def simulated_status(d: TwinDeployment, ready_after_polls: int) -> Status:
    if d.node is None:
        return Status("Pending", "scheduling", False, message="no node matches the requested GPU")
    if d.polls >= ready_after_polls:
        return Status("Active", "ready", True, _running())
    return Status("Pending", "starting", False, _waiting("ContainerCreating", ""))


def hosted_status(d: TwinDeployment, hosted: Any) -> Status:
    """From what the ActorHost says about the really-running Actor."""
    if d.node is None:
        return Status("Pending", "scheduling", False, message="no node matches the requested GPU")
    if hosted is None or hosted.state == "starting":
        return Status("Pending", "starting", False, _waiting("ContainerCreating", ""))
    if hosted.state == "running":
        return Status("Active", "ready", True, _running())
    if hosted.kind == "infra":  # the image could not be had: Kubernetes reports a pull failure
        return Status("Pending", "pulling", False, _waiting("ImagePullBackOff", hosted.error or ""))
    return Status("Pending", "failed", False, _waiting("CrashLoopBackOff", hosted.error or "", restarts=3),
                  message="container is crash-looping")


def _running() -> tuple[dict, ...]:
    return ({"podName": "pod-0", "containerName": "app", "state": "running", "reason": None, "message": None,
             "restartCount": 0},)


def _waiting(reason: str, message: str, restarts: int = 0) -> tuple[dict, ...]:
    return ({"podName": "pod-0", "containerName": "app", "state": "waiting", "reason": reason,
             "message": message or None, "restartCount": restarts},)


def summary_view(d: TwinDeployment, status: Status) -> dict:
    """`DeploymentSummary`: 9 fields, no phase, no token."""
    desired = d.spec.get("replicas", 1)
    return {"instanceName": d.id, "friendlyName": d.friendly_name, "state": status.state, "url": d.url,
            "replicas": {"desired": desired, "ready": desired if status.ready else 0}, "createdAt": d.created_at,
            "public": not d.private, "websocket": None, "publicMetadata": bool(d.spec.get("publicMetadata"))}


def detail_view(d: TwinDeployment, status: Status, with_token: bool = False) -> dict:
    """`DeploymentResponse`; the share token only when `with_token` (the create answer)."""
    view = summary_view(d, status) | {
        "userId": "twin-user", "namespace": "u-twin-user", "image": d.spec.get("image", ""),
        "phase": status.phase, "message": status.message, "updatedAt": d.created_at, "pods": None,
        "progress": None, "containerStatuses": list(status.containers),
        "phaseProgress": sum(c.get("restartCount", 0) for c in status.containers), "distributed": None,
    }
    if with_token and d.share_token:
        view |= {"shareToken": d.share_token, "shareUrl": f"{d.url}?token={d.share_token}"}
    return view
