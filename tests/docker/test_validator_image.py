"""The validator's own image (top-level Dockerfile): it builds from the local base image, runs
under tini as PID 1, and its CLI works — `subnet --help`, `subnet validator status`."""

from __future__ import annotations

import pytest

from subnet.miner.build import _build
from docker_support import REPO
from session_images import session_labels

# A cold build of the validator image installs the package and its dependencies from PyPI (minutes):
# pytest-timeout's 300 s default per test counts this module fixture's setup, and a cold cache ran past it.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]

TAG = "subnet-test/validator:latest"


@pytest.fixture(scope="module")
def validator_image(docker_client, base_image):
    # network host: pip and apt reach PyPI and Debian as every other build here does
    image_id = _build(docker_client, "validator image", lambda _line: None, path=str(REPO), dockerfile="Dockerfile",
                      tag=TAG, network_mode="host", labels=session_labels())
    return docker_client.images.get(image_id)


def run(docker_client, image, *args: str) -> str:
    container = docker_client.containers.run(image.id, list(args), detach=True, network_mode="none",
                                             labels={"subnet.test": "validator-image"})
    try:
        status = container.wait(timeout=120)
        output = container.logs().decode()
        assert status["StatusCode"] == 0, output[-2000:]
        return output
    finally:
        container.remove(force=True)


def test_the_image_runs_under_tini_as_a_non_root_user(validator_image):
    config = validator_image.attrs["Config"]
    assert config["Entrypoint"] == ["/usr/bin/tini", "--", "subnet"]
    assert config["User"] == "validator"


def test_subnet_help_and_validator_status_work_in_the_image(docker_client, validator_image):
    assert "validator" in run(docker_client, validator_image, "--help")
    status = run(docker_client, validator_image, "validator", "status", "--json")
    assert '"store": null' in status and "no validator state yet" in status
