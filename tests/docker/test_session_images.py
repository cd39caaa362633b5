"""The suite removes the images it built, and only those: images carry this session's label (every
package build reads SUBNET_BUILD_LABELS), and the end-of-session cleanup removes by that label."""

from __future__ import annotations

import uuid

import docker.errors
import pytest

from session_images import SESSION_ID, SESSION_LABEL, remove_session_images

pytestmark = pytest.mark.docker


def test_package_builds_carry_this_sessions_label(reference_image, docker_client):
    labels = docker_client.images.get(reference_image.image_id).labels
    assert labels[SESSION_LABEL] == SESSION_ID


def test_cleanup_removes_one_sessions_images_and_never_anothers(docker_client, tmp_path):
    mine, theirs = f"probe-{uuid.uuid4().hex[:8]}", f"probe-{uuid.uuid4().hex[:8]}"
    (tmp_path / "hello").write_text("hello\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY hello /hello\n")
    built = {}
    for session in (mine, theirs):
        image, _ = docker_client.images.build(path=str(tmp_path), labels={SESSION_LABEL: session}, rm=True)
        built[session] = image.id
    (tmp_path / "Dockerfile").write_text(f"FROM {built[mine]}\nCOPY hello /again\n")  # a child of mine
    child, _ = docker_client.images.build(path=str(tmp_path), labels={SESSION_LABEL: mine}, rm=True)
    try:
        assert remove_session_images(docker_client, mine) >= 2  # with the child's build layer, which inherits it
        assert docker_client.images.list(all=True, filters={"label": f"{SESSION_LABEL}={mine}"}) == []
        for gone in (built[mine], child.id):
            with pytest.raises(docker.errors.ImageNotFound):
                docker_client.images.get(gone)
        assert docker_client.images.get(built[theirs]).labels[SESSION_LABEL] == theirs
    finally:
        docker_client.images.remove(built[theirs], force=True)
