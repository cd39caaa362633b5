"""Pick and build the runtime for a mode name."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from subnet.config import Settings


class RuntimeUnavailable(Exception):
    """The requested runtime cannot run here; the message says why and what to do."""


def docker_answers() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no daemon"
        return False


def make_runtime(mode: str, settings: Settings, env_dirs: Sequence[Path] = (), allow_local: bool = False):
    if mode == "auto":
        mode = "process"  # docker joins `auto` once the Docker runtime lands
    if mode == "process":
        from subnet.runtime.process import ProcessRuntime

        return ProcessRuntime(settings.start_timeout, settings.max_response_bytes, settings.forward_env)
    if mode == "docker":
        if not docker_answers():
            raise RuntimeUnavailable("no Docker daemon answers (is it running, and may this user use it?)")
        from subnet.runtime.docker import DockerRuntime

        return DockerRuntime(settings, allow_local=allow_local)
    raise RuntimeUnavailable(f"mode {mode!r} is not available in this build yet")
