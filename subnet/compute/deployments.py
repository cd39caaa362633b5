"""What a Basilica runtime asks for (`DeploymentSpec`), what Basilica says back (`DeploymentInfo`),
and the secret needed to call a private deployment (`DeploymentAccess`). Pure: no I/O.

Facts this module is built on (basilica-sdk 0.36.8, `basilica/_basilica.pyi` and `__init__.py`):
- The server names a deployment by a UUID it assigns (`DeploymentResponse.instance_name`) and keeps
  the name we send only as `friendly_name` (`BasilicaClient.get_by_name` docstring: "rather than the
  UUID instance name"). Every call after create must use the UUID.
- `share_token` is "only returned on creation"; `share_url` is the deployment URL "with token query
  parameter" (`RegenerateShareTokenResponse.share_url`). We take the parameter from `share_url`
  itself, so the product is right whatever the parameter is called.
- GPUs are requested by `gpu_models` and/or `min_gpu_memory_gb` (what the SDK's `deploy_vllm`
  schedules by). The server, not the client, turns each model into a node-label value: it
  upper-cases it and keeps letters and digits (bigailabs/cathedral cb85814f,
  `crates/basilica-operator/src/labels.rs` 155-166 `normalize_gpu_model`, applied to the request in
  `user_deployment_controller.rs` 432), then asks for a node whose `basilica.ai/gpu-model` label is
  one of them, compared as written. Any non-empty string is accepted, at most 10
  (`crates/basilica-api/src/api/routes/deployments/types.rs` 369-430).
- The public server's answers carry no `public`, `friendlyName`, `shareToken` or `containerStatuses`
  (types.rs 160-232); the SDK then reads `public` as True and the name as "". So whether a
  deployment is private is what WE asked for, never what comes back.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from subnet.compute.policy import Offering
from subnet.compute.settings import ConfigError

_DNS_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_VENDOR_WORDS = {"NVIDIA", "TESLA", "GEFORCE", "QUADRO"}
MAX_GPU_MODELS = 10  # SRV types.rs `validate_gpu_requirements`: "GPU model list too long ... (max 10)"
# Short names the operator derives from NFD product names, in its order (labels.rs 114-139,
# `GPU_MODEL_PATTERNS`): a node may be labelled with one of these.
_SHORT_MODELS = ("H200", "H100", "A100", "A10G", "A30", "A40", "A10", "L40S", "L40", "L4", "V100", "T4", "P100",
                 "P40", "RTX-4090", "RTX-4080", "RTX-4070", "RTX-3090", "RTX-3080")


def ledger_owner(identity: str) -> str:
    """The ledger's owner for what the validator with this id creates (the CLI's rentals are "cli")."""
    return f"validator:{identity}"


def owned_prefix(identity: str) -> str:
    """Every deployment this validator creates has a friendly name starting with this."""
    return f"sn-{identity}-"


def friendly_name(identity: str, uid: int, digest: str) -> str:
    """DNS-safe, unique per create: owner, uid, the digest's head and a random tail."""
    head = digest.split(":", 1)[-1][:8]
    return f"{owned_prefix(identity)}u{uid}-{head}-{secrets.token_hex(3)}"


def normalize_gpu_model(model: str) -> str:
    """What the server makes of a requested model: upper-case, letters and digits only (SRV
    labels.rs 155-166; empty → "UNKNOWN")."""
    return "".join(ch for ch in model.strip().upper() if ch.isalnum()) or "UNKNOWN"


def gpu_model_spellings(gpu_type: str) -> list[str]:
    """The offering's GPU type verbatim, then other spellings a node may be labelled with.

    Nodes the autoscaler provisions for an offering are labelled normalize(offering gpu_type)
    (SRV `crates/basilica-autoscaler/src/controllers/node_pool_controller.rs` 1539-1545): the
    verbatim type matches those once the server normalises it, whatever its punctuation. Nodes
    labelled from NFD or by hand may carry the model without its vendor, or the operator's short
    name (labels.rs `extract_short_gpu_model`). Nothing is dropped for its spelling: the server
    normalises before it compares. Two spellings the server would normalise alike are sent once.
    """
    verbatim = gpu_type.strip()
    words = [w for w in re.split(r"[\s_]+", verbatim.upper()) if w]
    core = [w for w in words if w not in _VENDOR_WORDS]
    candidates = [verbatim, "-".join(core)]
    tokens = "-" + "-".join(t for t in re.split(r"[^A-Z0-9]+", verbatim.upper()) if t) + "-"
    # whole tokens only: "A40" is not in "RTX-A4000"
    candidates += [short for short in _SHORT_MODELS if f"-{short}-" in tokens][:1]
    series, _, model = (core[-1] if core else "").partition("-")
    if series.isalpha() and model:  # RTX-A4000 → A4000 as well
        candidates.append(model)
    chosen: list[str] = []
    seen: set[str] = set()
    for value in candidates:
        key = normalize_gpu_model(value)
        if value and key != "UNKNOWN" and key not in seen:
            seen.add(key)
            chosen.append(value)
    return chosen[:MAX_GPU_MODELS]


@dataclass
class DeploymentSpec:
    """What a Basilica runtime asks for. Deployments take no offering id and no price cap, so pick
    the GPU with the policy first and describe it here (`for_offering`)."""

    name: str  # the friendly name we send as instance_name; also the ledger key
    image: str
    port: int = 8000
    env: dict[str, str] = field(default_factory=dict)
    cpu: str = "2"
    memory: str = "8Gi"
    gpu_count: int = 1
    gpu_models: list[str] = field(default_factory=list)
    min_gpu_memory_gb: int | None = None
    spot: bool | None = None
    ttl_seconds: int | None = 3600  # a backstop the public server does not enforce (start_budget.ttl_s)
    public: bool = False  # design 5: never callable by strangers; callers use the share token/URL
    command: list[str] | None = None
    args: list[str] | None = None

    def __post_init__(self) -> None:
        if not _DNS_NAME.match(self.name):
            raise ConfigError(f"deployment name {self.name!r} must be lowercase letters, digits and dashes (max 63)")
        if self.gpu_count and not self.gpu_models:  # SRV types.rs: "GPU model list cannot be empty"
            raise ConfigError("a GPU deployment needs at least one GPU model")
        if len(self.gpu_models) > MAX_GPU_MODELS or any(normalize_gpu_model(m) == "UNKNOWN" for m in self.gpu_models):
            raise ConfigError(f"GPU models {self.gpu_models!r}: at most {MAX_GPU_MODELS}, each with a letter or digit")

    @classmethod
    def for_offering(cls, offering: Offering, *, name: str, image: str, **kw: Any) -> DeploymentSpec:
        if offering.cpu_only:  # no `resources.gpus` at all: SRV types.rs `validate_resources` skips it when absent
            return cls(name=name, image=image, gpu_count=0, **kw)
        memory = offering.gpu_memory_gb or None
        return cls(name=name, image=image, gpu_count=offering.gpu_count, gpu_models=gpu_model_spellings(offering.gpu_type),
                   min_gpu_memory_gb=memory, spot=offering.is_spot, **kw)

    def sdk_kwargs(self) -> dict:
        return dict(
            instance_name=self.name, image=self.image, port=self.port, env=dict(self.env) or None, cpu=self.cpu,
            memory=self.memory, gpu_count=self.gpu_count or None, gpu_models=list(self.gpu_models) or None,
            min_gpu_memory_gb=self.min_gpu_memory_gb, spot=self.spot, ttl_seconds=self.ttl_seconds,
            public=self.public, command=self.command, args=self.args,
        )

    def summary(self) -> dict:
        # Ledger detail: env VALUES are left out on purpose (they may be secrets).
        return {"image": self.image, "port": self.port, "cpu": self.cpu, "memory": self.memory,
                "gpu_count": self.gpu_count, "gpu_models": self.gpu_models, "min_gpu_memory_gb": self.min_gpu_memory_gb,
                "spot": self.spot, "public": self.public, "ttl_seconds": self.ttl_seconds, "env_keys": sorted(self.env)}

    @classmethod
    def from_summary(cls, name: str, detail: dict) -> DeploymentSpec:
        """The spec a ledger row recorded, without env values (never stored): enough to re-send a
        create whose only purpose is to learn the UUID the server gave that name (`recovery.py`)."""
        return cls(name=name, image=detail.get("image") or "", port=int(detail.get("port") or 8000),
                   cpu=detail.get("cpu") or "2", memory=detail.get("memory") or "8Gi",
                   gpu_count=int(detail.get("gpu_count") or 0), gpu_models=list(detail.get("gpu_models") or []),
                   min_gpu_memory_gb=detail.get("min_gpu_memory_gb"), spot=detail.get("spot"),
                   ttl_seconds=detail.get("ttl_seconds") or 3600, public=bool(detail.get("public", False)))


@dataclass(frozen=True)
class ContainerState:
    """One container's real state (`ContainerStatusSnapshot`): running/waiting/terminated, the
    Kubernetes reason (CrashLoopBackOff, ImagePullBackOff, OOMKilled...) with the kubelet's message,
    and how often the kubelet restarted it. Today's server sends these; the public one never did."""

    state: str = ""
    reason: str = ""
    message: str = ""
    restart_count: int = 0


@dataclass(frozen=True)
class PodState:
    """A pod of the deployment (`PodInfo`: name, status, node). What `status` carries (the pod's
    phase, or a reason such as "Evicted") is open: the public server never filled `pods`."""

    name: str = ""
    status: str = ""


@dataclass(frozen=True)
class DeploymentEvent:
    """A Kubernetes event on the deployment's pods (`GET /deployments/{id}/events`, in both server
    generations: SRV handlers.rs 1381-1412 sends `{"type", "reason", "message", "count",
    "last_timestamp"}`, newest first, and the SDK hands the dict through)."""

    reason: str
    message: str = ""
    type: str = ""


def events_from(payload: Any) -> tuple[DeploymentEvent, ...]:
    items = payload.get("events") if isinstance(payload, dict) else None
    return tuple(DeploymentEvent(str(e.get("reason") or ""), str(e.get("message") or ""),
                                 str(e.get("type") or e.get("event_type") or ""))
                 for e in (items or []) if isinstance(e, dict))


@dataclass
class DeploymentInfo:
    id: str  # the server's UUID (`instance_name` in every response)
    friendly_name: str
    state: str
    url: str
    ready: int = 0
    desired: int = 0
    public: bool = True  # as the server echoed it: absent on the public server, where the SDK says True
    phase: str | None = None  # absent from list summaries
    message: str | None = None
    image: str = ""
    containers: tuple[ContainerState, ...] = ()
    pods: tuple[PodState, ...] = ()

    @property
    def is_ready(self) -> bool:
        return self.state.lower() in ("active", "running", "ready") and self.ready >= self.desired > 0


@dataclass(frozen=True)
class DeploymentAccess:
    """How to call a private deployment: base URL plus the query parameters carrying its token.
    Held in memory only: never logged, never written to the ledger."""

    base_url: str
    params: tuple[tuple[str, str], ...] = ()

    def __repr__(self) -> str:  # the params are the secret
        return f"DeploymentAccess({self.base_url!r}, params=<{len(self.params)} hidden>)"

    @property
    def query(self) -> dict[str, str]:
        return dict(self.params)


def access_from(url: str, share_url: str | None, token: str | None, public: bool) -> DeploymentAccess | None:
    """The access for a deployment, or None when a private one has no usable token (never call it)."""
    if public:
        return DeploymentAccess(url.rstrip("/"))
    if share_url:
        parts = urlsplit(share_url)
        params = tuple(parse_qsl(parts.query, keep_blank_values=True))
        if params and (token is None or any(v == token for _, v in params)):
            base = urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
            return DeploymentAccess(base, params)
    if token:
        return DeploymentAccess(url.rstrip("/"), (("token", token),))
    return None


@dataclass
class CreatedDeployment:
    info: DeploymentInfo
    access: DeploymentAccess | None = field(default=None, repr=False)
    adopted: bool = False  # found by friendly name after an answer was lost (token regenerated)


def deployment_info(res: Any) -> DeploymentInfo:
    """From the SDK's DeploymentResponse or DeploymentSummary (the summary lacks phase and pods)."""
    containers = tuple(_container(c) for c in (getattr(res, "container_statuses", None) or ()))
    pods = tuple(PodState(p.name or "", p.status or "") for p in (getattr(res, "pods", None) or ()))
    return DeploymentInfo(
        id=res.instance_name, friendly_name=getattr(res, "friendly_name", "") or "", state=res.state or "",
        url=res.url or "", ready=res.replicas.ready, desired=res.replicas.desired, public=bool(res.public),
        phase=getattr(res, "phase", None), message=getattr(res, "message", None), image=getattr(res, "image", ""),
        containers=containers, pods=pods,
    )


def _container(snapshot: Any) -> ContainerState:
    return ContainerState(state=snapshot.state or "", reason=snapshot.reason or "", message=snapshot.message or "",
                          restart_count=int(getattr(snapshot, "restart_count", 0) or 0))
