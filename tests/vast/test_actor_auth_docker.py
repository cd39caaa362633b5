"""The image `subnet miner build` makes checks the instance token: built for real, run in Docker
with SUBNET_ACTOR_TOKEN set, called over loopback with no, a wrong and the right token; without the
variable the same image is open, as before (the Docker runtime's Actors keep working unchanged)."""

from __future__ import annotations

import time

import httpx
import pytest

from envs_factory import make_env
from session_images import session_labels
from subnet.miner.build import build_env_image
from subnet.protocol.actor_auth import ACTOR_TOKEN_ENV, bearer_header, new_token

PROBE_METHOD = """
    def environment(self, **_):
        import os
        return {"keys": sorted(os.environ)}
"""


@pytest.fixture(scope="module")
def probe_image(docker_client, tmp_path_factory):
    folder = make_env(tmp_path_factory.mktemp("envs"), "honest")
    source = (folder / "env.py").read_text()
    (folder / "env.py").write_text(source.replace("class Actor:", "class Actor:" + PROBE_METHOD, 1))
    return build_env_image(folder, "subnet-test/actor-auth:latest", client=docker_client)


def _run(docker_client, image_id: str, environment: dict[str, str]):
    container = docker_client.containers.run(
        image_id, detach=True, environment=environment, labels=session_labels(),
        ports={"8000/tcp": ("127.0.0.1", None)},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        container.reload()
        ports = container.attrs["NetworkSettings"]["Ports"].get("8000/tcp") or []
        if ports:
            return container, f"http://127.0.0.1:{ports[0]['HostPort']}"
        time.sleep(0.2)
    container.remove(force=True)
    raise AssertionError("no port mapped")


def _wait(url: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", headers=headers, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the Actor never answered /health")


def test_built_image_answers_401_without_the_token(docker_client, probe_image):
    token = new_token()
    container, url = _run(docker_client, probe_image.image_id, {ACTOR_TOKEN_ENV: token})
    try:
        _wait(url, bearer_header(token))
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": token}):
            for path in ("/health", "/methods"):
                assert httpx.get(url + path, headers=headers, timeout=10).status_code == 401
            reply = httpx.post(f"{url}/call", headers=headers, timeout=10, json={"method": "environment"})
            assert reply.status_code == 401
        reply = httpx.post(f"{url}/call", headers=bearer_header(token), timeout=30,
                           json={"method": "environment", "args": [], "kwargs": {}})
        assert reply.status_code == 200, reply.text
        assert ACTOR_TOKEN_ENV not in reply.json()["result"]["keys"]  # taken out before env.py ran
    finally:
        container.remove(force=True)


def test_built_image_without_the_variable_is_open(docker_client, probe_image):
    container, url = _run(docker_client, probe_image.image_id, {})
    try:
        _wait(url, {})
        reply = httpx.post(f"{url}/call", timeout=30, json={"method": "environment", "args": [], "kwargs": {}})
        assert reply.status_code == 200
    finally:
        container.remove(force=True)
