"""What a Basilica runtime asks for (`DeploymentSpec`) and what Basilica says back (`DeploymentInfo`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from subnet.compute.policy import Offering
from subnet.compute.settings import ConfigError

_DNS_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


@dataclass
class DeploymentSpec:
    """What a Basilica runtime asks for. Deployments take no offering id and no price cap, so pick
    the GPU with the policy first and pin it here (`for_offering`)."""

    name: str  # instance_name: DNS-safe, also the ledger key
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

    @classmethod
    def for_offering(cls, offering: Offering, *, name: str, image: str, **kw: Any) -> DeploymentSpec:
        return cls(name=name, image=image, gpu_count=offering.gpu_count, gpu_models=[offering.gpu_type],
                   spot=offering.is_spot, **kw)

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
                "spot": self.spot, "public": self.public, "env_keys": sorted(self.env)}


@dataclass
class DeploymentInfo:
    name: str
    state: str
    url: str
    ready: int = 0
    desired: int = 0
    public: bool = True
    phase: str | None = None
    message: str | None = None
    image: str = ""
    share_url: str | None = field(default=None, repr=False)  # carries the token: keep out of logs
    share_token: str | None = field(default=None, repr=False)

    @property
    def is_ready(self) -> bool:
        return self.state in ("Active", "Running") and self.ready >= self.desired > 0

    @property
    def failed(self) -> bool:
        return self.state == "Failed"


def deployment_info(res: Any) -> DeploymentInfo:
    """From the SDK's DeploymentResponse or DeploymentSummary (the summary lacks some fields)."""
    return DeploymentInfo(
        name=res.instance_name, state=res.state, url=res.url, ready=res.replicas.ready,
        desired=res.replicas.desired, public=bool(res.public), phase=getattr(res, "phase", None),
        message=getattr(res, "message", None), image=getattr(res, "image", ""),
        share_url=getattr(res, "share_url", None), share_token=getattr(res, "share_token", None),
    )
