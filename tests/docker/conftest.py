"""Session fixtures for the Docker tests: the local base image, the reference env's Actor image,
the hostile images, and runtimes that prove they left nothing behind.

Images are built once per session (Docker's layer cache makes later sessions quick), labelled with
this session's id and removed when it ends (tests/session_images.py); every container and network
a test creates is labelled and checked for leaks.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from subnet.config import Settings
from subnet.miner.build import BuiltImage, build_env_image
from subnet.runtime.docker import DockerRuntime
from subnet.runtime.docker_settings import DockerSettings

from docker_support import BASE_TAG, IMAGES, REPO, TEST_LABEL, TIMINGS, leftovers
from session_images import session_labels


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if TIMINGS:
        terminalreporter.write_sep("-", "docker timings")
        for what, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{what}: {seconds:.1f} s")


@pytest.fixture(scope="session")
def base_image(docker_client):
    """`python:3.11-slim`, built from Debian packages by the script if this daemon lacks it."""
    import docker.errors

    try:
        return docker_client.images.get(BASE_TAG)
    except docker.errors.ImageNotFound:
        pass
    started = time.monotonic()
    proc = subprocess.run(["bash", str(REPO / "scripts" / "build_base_image.sh")], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"scripts/build_base_image.sh failed:\n{proc.stderr[-3000:]}")
    TIMINGS["base image build (scripts/build_base_image.sh)"] = time.monotonic() - started
    return docker_client.images.get(BASE_TAG)


def _build(docker_client, env_dir: Path, tag: str, what: str) -> BuiltImage:
    started = time.monotonic()
    built = build_env_image(env_dir, tag, client=docker_client)
    TIMINGS[f"{what} build (cached layers reused when present)"] = time.monotonic() - started
    return built


@pytest.fixture(scope="session")
def reference_image(docker_client, base_image) -> BuiltImage:
    """The lead's reference env (envs/matrix-chain-numpy), built exactly as a miner would."""
    env_dir = REPO / "envs" / "matrix-chain-numpy"
    if not (env_dir / "env.py").is_file():
        pytest.fail(f"reference env missing: {env_dir}")
    return _build(docker_client, env_dir, "subnet-test/reference:latest", "reference env")


@pytest.fixture(scope="session")
def hostile_image(docker_client, base_image) -> BuiltImage:
    return _build(docker_client, IMAGES / "hostile", "subnet-test/hostile:latest", "hostile env")


def _derived(docker_client, folder: str, base: BuiltImage) -> str:
    image, _ = docker_client.images.build(
        path=str(IMAGES / folder), tag=f"subnet-test/{folder}:latest", buildargs={"BASE": base.image_id},
        rm=True, forcerm=True, pull=False, labels=session_labels(),
    )
    return f"local.invalid/subnet-test/{folder}@{image.id}"


@pytest.fixture(scope="session")
def exit_at_start_ref(docker_client, hostile_image) -> str:
    return _derived(docker_client, "exit-at-start", hostile_image)


@pytest.fixture(scope="session")
def wrong_port_ref(docker_client, hostile_image) -> str:
    return _derived(docker_client, "wrong-port", hostile_image)


@pytest.fixture(scope="session")
def slow_honest_ref(docker_client, reference_image) -> str:
    """The reference Actor, answering honestly after 1.5 s per call."""
    return _derived(docker_client, "slow-honest", reference_image)


@pytest.fixture
def make_runtime(docker_client, tmp_path_factory) -> Callable[..., DockerRuntime]:
    """Runtimes with small limits, each its own validator (state directory) unless `home` is
    given; after the test, none may have left a container or network."""
    made: list[DockerRuntime] = []

    def make(*, start_timeout: float = 30.0, max_response_bytes: int = 1 << 20, forward_env=(), home=None,
             settings: dict | None = None, **limits) -> DockerRuntime:
        settings = Settings(_env_file=None, start_timeout=start_timeout, max_response_bytes=max_response_bytes,
                            forward_env=list(forward_env), home=home or tmp_path_factory.mktemp("home"),
                            **(settings or {}))
        defaults = dict(memory="256m", cpus=1.0, pids=64, tmpfs_size="16m", host_guard="auto")
        runtime = DockerRuntime(settings, DockerSettings(_env_file=None, **{**defaults, **limits}),
                                allow_local=True, client=docker_client)
        made.append(runtime)
        return runtime

    yield make
    for runtime in made:
        runtime.close()
        containers, networks = leftovers(docker_client, runtime.run_id)
        for leaked in containers:
            leaked.remove(force=True)
        for leaked in networks:
            leaked.remove()
        assert not containers and not networks, f"leaked {containers} {networks}"


@pytest.fixture
def test_labels() -> dict[str, str]:
    return {TEST_LABEL: f"{os.getpid()}-{time.monotonic_ns()}"}
