"""`subnet miner build | push | publish` and `build_env_image`: validation, real builds, a real
push to a local registry (Debian's docker-registry on 127.0.0.1), and no commit after a failed push."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from subnet.chain.devchain import DevChain
from subnet.cli import _register, app
from subnet.protocol.commitment import parse_image_ref
from subnet.miner.build import BuildFailed, build_env_image
from subnet.protocol.envdir import InvalidEnv, validate_env_dir
from subnet.miner.wrapper import ACTOR_UID
from subnet.registry.client import LABEL_HOTKEY
from docker_support import IMAGES, run, sub

HOSTILE = IMAGES / "hostile"
_register()


def cli(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def env_folder(root: Path, env_py: str | None, dockerfile: str | None = "FROM python:3.11-slim\nWORKDIR /app\nCOPY . .\n") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if env_py is not None:
        (root / "env.py").write_text(env_py)
    if dockerfile is not None:
        (root / "Dockerfile").write_text(dockerfile)
    return root


# -- validation: no Docker, no miner code executed ------------------------------------------------

@pytest.mark.parametrize(
    "env_py, dockerfile, message",
    [
        (None, "FROM x", "no env.py"),
        ("class Actor:\n    def evaluate(self): ...\n", None, "no Dockerfile"),
        ("class Actor(:\n", "FROM x", "syntax error"),
        ("def evaluate(): ...\n", "FROM x", "no top-level `class Actor`"),
        ("class Actor:\n    def other(self): ...\n", "FROM x", "has no `evaluate` method"),
    ],
)
def test_invalid_env_folders_get_one_line_errors(tmp_path, env_py, dockerfile, message):
    folder = env_folder(tmp_path / "env", env_py, dockerfile)
    with pytest.raises(InvalidEnv) as caught:
        validate_env_dir(folder)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_validation_never_runs_miner_code(tmp_path):
    canary = tmp_path / "ran"
    folder = env_folder(tmp_path / "env", f"open({str(canary)!r}, 'w').write('x')\nclass Actor:\n    async def evaluate(self, **kw): ...\n")
    assert validate_env_dir(folder) == folder.resolve()
    assert not canary.exists()


def test_cli_rejects_a_bad_env_and_a_bad_tag_with_exit_2(tmp_path):
    bad = cli("miner", "build", str(env_folder(tmp_path / "bad", "x = 1\n")), "--tag", "ok:1")
    assert bad.exit_code == 2 and "no top-level `class Actor`" in bad.output
    tag = cli("miner", "build", str(HOSTILE), "--tag", "Not Valid")
    assert tag.exit_code == 2 and "not a valid image name" in tag.output


# -- real builds ----------------------------------------------------------------------------------

@pytest.mark.docker
def test_built_image_is_a_non_root_affinetes_actor(docker_client, hostile_image):
    image = docker_client.images.get(hostile_image.tag)
    config = image.attrs["Config"]
    assert image.id == hostile_image.image_id == parse_image_ref(hostile_image.reference).digest
    assert hostile_image.reference == f"local.invalid/subnet-test/hostile:latest@{image.id}"
    assert config["User"] == f"{ACTOR_UID}:{ACTOR_UID}"
    assert config["Cmd"] == ["python3", "/opt/subnet-actor/serve.py"] and not config["Entrypoint"]
    assert config["Labels"]["affinetes.env.type"] == "function_based"


@pytest.mark.docker
def test_build_failures_are_one_line(docker_client, base_image, tmp_path):
    failing = env_folder(tmp_path / "fails", "class Actor:\n    def evaluate(self): ...\n",
                         "FROM python:3.11-slim\nWORKDIR /app\nCOPY . .\nRUN exit 7\n")
    with pytest.raises(BuildFailed) as caught:
        build_env_image(failing, "subnet-test/fails:latest", client=docker_client)
    # "Step 4/4", or 4/5 where the session's image label adds a LABEL step (tests/session_images.py)
    assert "env Dockerfile failed at Step 4/" in str(caught.value) and "code: 7" in str(caught.value)
    misplaced = env_folder(tmp_path / "misplaced", "class Actor:\n    def evaluate(self): ...\n",
                           "FROM python:3.11-slim\nWORKDIR /srv\nCOPY . .\n")
    with pytest.raises(BuildFailed) as caught:
        build_env_image(misplaced, "subnet-test/misplaced:latest", client=docker_client)
    assert "Actor wrapper failed" in str(caught.value) and "/app/env.py is missing" in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.docker
def test_cli_build_prints_the_content_digest(hostile_image):
    result = cli("miner", "build", str(HOSTILE), "--tag", hostile_image.tag, "--json", "-q")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"tag": hostile_image.tag, "image_id": hostile_image.image_id,
                                         "reference": hostile_image.reference}


# -- push and publish -------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.docker
def test_push_to_an_unreachable_registry_fails_cleanly(docker_client, hostile_image):
    port = _free_port()  # nothing listens there
    target = f"127.0.0.1:{port}/subnet-test/hostile"
    result = cli("miner", "push", hostile_image.tag, "--repo", target, "-q")
    assert result.exit_code == 1
    assert result.output.startswith("error: push") and f"127.0.0.1:{port}" in result.output
    assert result.output.count("\n") == 1
    assert f"{target}:latest" not in docker_client.images.get(hostile_image.image_id).tags  # tag undone


@pytest.mark.docker
def test_publish_commits_nothing_when_the_push_fails(docker_client, hostile_image, tmp_path):
    port = _free_port()
    repo = f"127.0.0.1:{port}/subnet-test/hostile"
    env = {"SUBNET_HOME": str(tmp_path)}
    try:
        result = cli("miner", "publish", str(HOSTILE), "--repo", repo, "--network", "devchain", "-q", env=env)
        assert result.exit_code == 1 and "error: push" in result.output
        assert DevChain(tmp_path / "devchain.sqlite").commitments(1) == []
    finally:
        docker_client.images.remove(f"{repo}:latest", noprune=True)


@pytest.fixture
def local_registry(tmp_path):
    """Debian's docker-registry (the reference registry) on 127.0.0.1, for this test only."""
    binary = shutil.which("docker-registry")
    if binary is None and shutil.which("apt-get") and subprocess.os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "docker-registry"],
                       capture_output=True, env={**subprocess.os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        binary = shutil.which("docker-registry")
    if binary is None:
        pytest.skip("Debian's docker-registry is not installed (apt-get install docker-registry)")
    port = _free_port()
    config = tmp_path / "registry.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail("docker-registry did not start")
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.docker
def test_publish_pushes_commits_and_the_runtime_pulls_by_digest(docker_client, hostile_image, local_registry, tmp_path, make_runtime):
    repo = f"{local_registry}/subnet-test/hostile"
    env = {"SUBNET_HOME": str(tmp_path)}
    result = cli("miner", "publish", str(HOSTILE), "--repo", repo, "--tag", "e2e", "--network", "devchain",
                 "--wallet.name", "miner", "--wallet.hotkey", "e2e", "--json", "-q", env=env)
    assert result.exit_code == 0, result.output
    committed = json.loads(result.stdout.strip().splitlines()[-1])
    reference = committed["data"]
    ref = parse_image_ref(reference)
    assert ref.registry == local_registry and ref.repository == "subnet-test/hostile"
    chain = DevChain(tmp_path / "devchain.sqlite")
    assert [c.data.decode() for c in chain.commitments(1)] == [reference]

    # publish labels the image with the miner's hotkey (so its id differs from the unlabelled build)
    published = docker_client.images.get(reference)
    assert published.labels[LABEL_HOTKEY] == "miner/e2e"
    # A validator without the image: drop the registry references, then open pulls by digest.
    for name in (reference, f"{repo}:e2e"):
        docker_client.images.remove(name, noprune=True)
    import docker.errors

    with pytest.raises(docker.errors.ImageNotFound):  # no other tag held it: the image is gone here
        docker_client.images.get(published.id)
    runtime = make_runtime()
    runtime.allow_local = False  # a validator

    async def scenario():
        async with runtime.open(sub(reference)) as session:
            return await session.call("ping", {}, timeout=10)

    try:
        assert run(scenario()) == "pong"
        assert docker_client.images.get(reference).id == published.id  # pulled by digest: the same image
    finally:
        docker_client.images.remove(reference, noprune=True)
