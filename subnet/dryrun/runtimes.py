"""Which runtime a dry run uses, and how env folders become something it can start.

`auto` picks Docker when a daemon answers and the envs' base images are already local (a dry run
must never need a registry), else the process runtime; Docker dry runs build each env folder into an
image first (`BuildingDockerRuntime`), Basilica dry runs drive the real Basilica runtime against the
in-process twin (`LocalBasilica`), Vast dry runs the real Vast runtime against its twin (`LocalVast`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from subnet.config import Settings
from subnet.runtime.factory import docker_answers, make_runtime


def missing_images(names: Sequence[str]) -> list[str]:
    """Which of `names` the local Docker image store lacks (all of them if Docker is away)."""
    try:
        import docker

        client = docker.from_env(timeout=5)
    except Exception:  # noqa: BLE001
        return list(names)
    try:
        missing = []
        for name in names:
            try:
                client.images.get(name)
            except Exception:  # noqa: BLE001 - not found, or the daemon failed: either way, missing
                missing.append(name)
        return missing
    finally:
        client.close()


def choose_dry_run_mode(mode: str, env_dirs: Sequence[Path]) -> tuple[str, str]:
    """Resolve `auto`: Docker when a daemon answers and the envs' base images are present
    locally (nothing may need pulling), else the process runtime. Returns (mode, why)."""
    if mode != "auto":
        return mode, ""
    if not docker_answers():
        return "process", "no Docker daemon answers: using the process runtime (trusted local code only)"
    from subnet.dryrun.building import base_images

    missing = missing_images(sorted(base_images(env_dirs)))
    if missing:
        return "process", (f"base image {', '.join(missing)} is not in the local Docker store "
                           "(docker pull it, or run scripts/build_base_image.sh): using the process runtime")
    return "docker", ""


def dry_run_runtime(mode: str, settings: Settings):
    """The runtime for a dry run, whose submissions are env folders."""
    if mode == "basilica":  # the real deployment path against a local twin that runs the env folders
        from subnet.dryrun.basilica import LocalBasilica

        return LocalBasilica(make_runtime("process", settings), settings)
    if mode == "vast":  # the real instance path against a local Vast twin that runs the env folders
        from subnet.dryrun.vast import LocalVast

        return LocalVast(make_runtime("process", settings), settings)
    if mode == "cloud":  # both twins; each miner on the cheapest box left
        from subnet.dryrun.cloud import LocalCloud

        return LocalCloud(make_runtime("process", settings), settings)
    if mode == "docker":
        from subnet.dryrun.building import BuildingDockerRuntime

        return BuildingDockerRuntime(make_runtime("docker", settings, allow_local=True))
    return make_runtime(mode, settings)
