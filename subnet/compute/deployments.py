"""What a Basilica runtime asks for (`DeploymentSpec`), what Basilica says back (`DeploymentInfo`),
and the secret needed to call a private deployment (`DeploymentAccess`). Pure: no I/O.

Facts this module is built on (basilica-sdk 0.36.8, `basilica/_basilica.pyi` and `__init__.py`):
- The server names a deployment by a UUID it assigns (`DeploymentResponse.instance_name`) and keeps
  the name we send only as `friendly_name` (`BasilicaClient.get_by_name` docstring: "rather than the
  UUID instance name"). Every call after create must use the UUID.
- `share_token` is "only returned on creation"; `share_url` is the deployment URL "with token query
  parameter" (`RegenerateShareTokenResponse.share_url`). We take the parameter from `share_url`
  itself, so the product is right whatever the parameter is called.
- GPUs are requested by `gpu_models` (node-label values, short names like "A100" in the SDK's own
  examples) and/or `min_gpu_memory_gb` (what the SDK's `deploy_vllm` schedules by).
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
# A Kubernetes label value: what a node-label match can ever equal (k8s apimachinery validation).
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")
_VENDOR_WORDS = {"NVIDIA", "TESLA", "GEFORCE", "QUADRO"}


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


def gpu_model_labels(gpu_type: str) -> list[str]:
    """Node-label spellings of an offering's GPU type, every one a valid label value.

    Offerings say "TESLA V100" or "RTX-A4000"; nodes are labelled with short model names. Which
    spelling a node carries is not fixed by the public source, so we ask for every plausible one
    (the model list is a set of acceptable models) and never send a value that cannot be a label.
    """
    words = [w for w in re.split(r"[\s_]+", gpu_type.strip().upper()) if w]
    core = [w for w in words if w not in _VENDOR_WORDS]
    candidates = ["-".join(core), "-".join(words)]
    last = core[-1] if core else ""
    if "-" in last:  # RTX-A4000 → A4000 as well
        candidates.append(last.split("-")[-1])
    seen: list[str] = []
    for value in candidates:
        if value and _LABEL_VALUE.match(value) and value not in seen:
            seen.append(value)
    return seen


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
    ttl_seconds: int | None = 3600  # a forgotten deployment dies on its own
    public: bool = False  # design 5: never callable by strangers; callers use the share token/URL
    command: list[str] | None = None
    args: list[str] | None = None

    def __post_init__(self) -> None:
        if not _DNS_NAME.match(self.name):
            raise ConfigError(f"deployment name {self.name!r} must be lowercase letters, digits and dashes (max 63)")
        if self.gpu_count and not self.gpu_models:  # SRV types.rs: "GPU model list cannot be empty"
            raise ConfigError("a GPU deployment needs at least one GPU model (node label value)")
        bad = [m for m in self.gpu_models if not _LABEL_VALUE.match(m)]
        if bad:
            raise ConfigError(f"GPU model {bad[0]!r} is not a node-label value and could never be scheduled")

    @classmethod
    def for_offering(cls, offering: Offering, *, name: str, image: str, **kw: Any) -> DeploymentSpec:
        memory = offering.gpu_memory_gb or None
        return cls(name=name, image=image, gpu_count=offering.gpu_count, gpu_models=gpu_model_labels(offering.gpu_type),
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
        return {"image": self.image, "port": self.port, "gpu_count": self.gpu_count, "gpu_models": self.gpu_models,
                "min_gpu_memory_gb": self.min_gpu_memory_gb, "spot": self.spot, "public": self.public,
                "env_keys": sorted(self.env)}


@dataclass(frozen=True)
class ContainerState:
    """One container's real state (`ContainerStatusSnapshot`): running/waiting/terminated, and the
    Kubernetes reason (CrashLoopBackOff, ImagePullBackOff, OOMKilled...) with the kubelet's message."""

    state: str = ""
    reason: str = ""
    message: str = ""


@dataclass
class DeploymentInfo:
    id: str  # the server's UUID (`instance_name` in every response)
    friendly_name: str
    state: str
    url: str
    ready: int = 0
    desired: int = 0
    public: bool = True
    phase: str | None = None  # absent from list summaries
    message: str | None = None
    image: str = ""
    containers: tuple[ContainerState, ...] = ()

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
    return DeploymentInfo(
        id=res.instance_name, friendly_name=getattr(res, "friendly_name", "") or "", state=res.state or "",
        url=res.url or "", ready=res.replicas.ready, desired=res.replicas.desired, public=bool(res.public),
        phase=getattr(res, "phase", None), message=getattr(res, "message", None), image=getattr(res, "image", ""),
        containers=containers,
    )


def _container(snapshot: Any) -> ContainerState:
    return ContainerState(state=snapshot.state or "", reason=snapshot.reason or "", message=snapshot.message or "")
