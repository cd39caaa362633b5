"""Helpers shared by the Docker tests (imported as `docker_support`; conftest holds the fixtures)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from subnet.protocol import Submission
from subnet.runtime.docker import OWNER_LABEL, ROLE, ROLE_LABEL

REPO = Path(__file__).resolve().parents[2]
IMAGES = Path(__file__).resolve().parent / "images"
BASE_TAG = "python:3.11-slim"
TEST_LABEL = "subnet.test"  # on the few containers/networks tests create directly

TIMINGS: dict[str, float] = {}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def sub(ref: str, uid: int = 7) -> Submission:
    return Submission(uid=uid, hotkey=f"hk{uid}", source=ref, digest=ref.rsplit("@", 1)[-1])


def leftovers(docker_client: Any, run_id: str) -> tuple[list, list]:
    selector = {"label": [f"{ROLE_LABEL}={ROLE}", f"subnet.run={run_id}"]}
    return docker_client.containers.list(all=True, filters=selector, ignore_removed=True), docker_client.networks.list(filters=selector)


def owned_by(docker_client: Any, identity: str) -> tuple[list, list]:
    """Every Actor container and network of the validator `identity`, any run."""
    selector = {"label": [f"{ROLE_LABEL}={ROLE}", f"{OWNER_LABEL}={identity}"]}
    return docker_client.containers.list(all=True, filters=selector, ignore_removed=True), docker_client.networks.list(filters=selector)
