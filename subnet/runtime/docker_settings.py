"""Limits for miner containers in Docker mode, read from `SUBNET_DOCKER_*` environment variables.

Kept apart from `subnet.config.Settings` so the Docker runtime's knobs live with the runtime.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_SIZE = re.compile(r"^[0-9]+[bkmg]?$")
_USER = re.compile(r"^[0-9]+(:[0-9]+)?$")


class DockerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUBNET_DOCKER_", env_file=".env", extra="ignore")

    memory: str = Field("2g", description="Memory limit per Actor container (docker size: 512m, 2g); no swap on top")
    cpus: float = Field(1.0, gt=0, description="CPUs per Actor container")
    pids: int = Field(256, ge=16, description="Process/thread limit per Actor container")
    cpu_threads: bool = Field(
        True,
        description=(
            "Tell each Actor its CPU limit through OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS "
            "(a BLAS that starts one thread per host core under a smaller CPU quota is throttled for "
            "most of every 100 ms scheduling period)"
        ),
    )
    tmpfs_size: str = Field("64m", description="Size of the writable /tmp (the root filesystem is read-only)")
    user: str = Field(
        "10001:10001",
        description="uid[:gid] the Actor runs as (numeric, so it exists in any image); empty = the image's USER",
    )
    gpus: str = Field(
        "auto",
        description=(
            "GPUs for Actors: auto (the daemon's NVIDIA runtime, GPUs listed by nvidia-smi), none, or "
            "device indexes/UUIDs such as 0,1 (subnet.runtime.docker_gpus)"
        ),
    )
    gpu_type: str = Field("", description="GPU model when nvidia-smi cannot name it here, e.g. 'RTX A4000'")
    actors_per_gpu: int = Field(1, ge=1, description="Actors sharing one GPU at a time (1: a GPU of its own)")
    pull: bool = Field(True, description="Pull a registry image that is not in the local store")
    attach_to: str = Field(
        "",
        description=(
            "Name or id of the container the validator itself runs in, when it drives the host's "
            "daemon through a mounted docker.sock (auto-detected from the default hostname)"
        ),
    )
    host_guard: Literal["auto", "require", "off"] = Field(
        "auto",
        description=(
            "Host firewall rule that stops Actors opening connections to the validator host itself "
            "(an internal Docker network still reaches the host's own addresses). auto: install it "
            "when running as root with iptables, warn otherwise; require: refuse to run without it"
        ),
    )
    relay_image: str = Field(
        "python:3.11-slim",
        description="Image of the relay that lets an LLM challenge's Actor reach the gateway (any image with "
                    "python3; pulled once when missing)",
    )

    @field_validator("memory", "tmpfs_size")
    @classmethod
    def _size(cls, value: str) -> str:
        value = value.strip().lower()
        if not _SIZE.match(value):
            raise ValueError(f"{value!r} is not a size like 512m or 2g")
        return value

    @field_validator("user")
    @classmethod
    def _user(cls, value: str) -> str:
        value = value.strip()
        if value and not _USER.match(value):
            raise ValueError(f"{value!r} is not numeric uid[:gid] (names may not exist in the image)")
        if value.split(":")[0] == "0":
            raise ValueError("refusing to run miner Actors as root (uid 0)")
        return value
