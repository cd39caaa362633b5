"""scripts/build_base_image.sh: the registry's image wherever one answers, the Debian stand-in only
where none does, and the stand-in says what it is. The shared `python:3.11-slim` is never touched:
every run here uses a tag of this session's own."""

from __future__ import annotations

import subprocess

import pytest

from docker_support import REPO
from session_images import SESSION_ID, session_labels
from test_build_publish import _free_port, local_registry  # noqa: F401  (fixture)

pytestmark = pytest.mark.docker

SCRIPT = REPO / "scripts" / "build_base_image.sh"
SESSION = SESSION_ID.lower()


def script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=600)


def tiny_image(docker_client, tmp_path, labels: dict[str, str]) -> str:
    """A few-byte image built FROM scratch (nothing pulled), labelled for this session's cleanup."""
    (tmp_path / "hello").write_text("hello\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY hello /hello\n")
    image, _ = docker_client.images.build(path=str(tmp_path), labels={**session_labels(), **labels}, rm=True)
    return image.id


def test_where_no_registry_answers_it_would_build_the_labelled_stand_in(docker_client):
    tag = f"subnet-test/base-none:{SESSION}"
    done = script("--tag", tag, "--source", f"127.0.0.1:{_free_port()}/python:3.11-slim", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "no registry answered for 127.0.0.1:" in done.stderr
    assert "would build a stand-in from Debian bookworm packages" in done.stderr
    assert f"as {tag}, labelled io.subnet.base-image=stand-in" in done.stderr
    assert not docker_client.images.list(name=tag)


def test_where_a_registry_answers_the_registry_image_is_pulled_and_no_stand_in_built(
        docker_client, local_registry, tmp_path):  # noqa: F811
    image_id = tiny_image(docker_client, tmp_path, {"probe": "official"})
    source = f"{local_registry}/library/python:{SESSION}"
    docker_client.images.get(image_id).tag(source)
    docker_client.images.push(source)
    docker_client.images.remove(image_id, force=True)  # not here any more: only the registry has it
    tag = f"subnet-test/base-pulled:{SESSION}"
    done = script("--tag", tag, "--source", source)
    assert done.returncode == 0, done.stderr
    assert f"pulled {source} as {tag}" in done.stderr and "no stand-in built" in done.stderr
    pulled = docker_client.images.get(tag)
    assert pulled.id == image_id and "io.subnet.base-image" not in (pulled.labels or {})
    again = script("--tag", tag, "--source", source)
    assert "already exists" in again.stderr and "not built by this script" in again.stderr
    docker_client.images.remove(image_id, force=True)


def test_an_existing_stand_in_says_what_it_is(docker_client, tmp_path):
    image_id = tiny_image(docker_client, tmp_path, {"io.subnet.base-image": "stand-in"})
    tag = f"subnet-test/base-standin:{SESSION}"
    docker_client.images.get(image_id).tag(tag)
    try:
        done = script("--tag", tag)
        assert done.returncode == 0
        assert "the project's stand-in built from Debian packages, not the official image" in done.stderr
        assert "pulling" not in done.stderr  # an existing tag is left alone without --force
    finally:
        docker_client.images.remove(image_id, force=True)
