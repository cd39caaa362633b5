"""Shared fixtures. Docker tests skip only where no daemon answers; with SUBNET_REQUIRE_DOCKER=1
(set by CI) that skip becomes a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from session_images import label_this_session, remove_session_images

label_this_session()  # before any build, in this process and every child it starts

REPO = Path(__file__).resolve().parent.parent
ENVS = REPO / "envs"
FIXTURE_ENVS = Path(__file__).resolve().parent / "envs"


def docker_required() -> bool:
    return os.environ.get("SUBNET_REQUIRE_DOCKER", "") not in ("", "0", "false")


@pytest.fixture(scope="session")
def docker_client():
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # noqa: BLE001
        if docker_required():
            pytest.fail(f"SUBNET_REQUIRE_DOCKER is set but no Docker daemon answers: {exc}")
        pytest.skip(f"no Docker daemon answers: {exc}")
    yield client
    client.close()


def torch_required() -> bool:
    return os.environ.get("SUBNET_REQUIRE_TORCH", "") not in ("", "0", "false")


@pytest.fixture(scope="session")
def torch():
    """torch, for the torch env's tests: skipped where torch is not installed, unless CI
    (SUBNET_REQUIRE_TORCH=1) requires it, where that skip becomes a failure."""
    try:
        import torch as module
    except ImportError as exc:
        if torch_required():
            pytest.fail(f"SUBNET_REQUIRE_TORCH is set but torch cannot be imported: {exc}")
        pytest.skip(f"torch is not installed: {exc}")
    return module


@pytest.fixture(scope="session")
def unavailable():
    """`unavailable(why)`: something a test needs is missing here (e.g. root to mount a tmpfs):
    skip, or fail where SUBNET_REQUIRE_DOCKER is set (CI), like the Docker skip above."""

    def give_up(why: str) -> None:
        if docker_required():
            pytest.fail(why)
        pytest.skip(why)

    return give_up


def pytest_sessionfinish(session, exitstatus) -> None:
    """Remove the images this session built (by its label only: see tests/session_images.py)."""
    try:
        import docker

        client = docker.from_env(timeout=30)
        client.ping()
    except Exception:  # noqa: BLE001 - no daemon: nothing was built
        return
    try:
        remove_session_images(client)
    finally:
        client.close()
