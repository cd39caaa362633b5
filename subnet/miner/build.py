"""Build a miner's env folder into an Actor image with the Docker SDK.

Two builds: the env's own Dockerfile (unmodified, as it would build anywhere), then the wrapper
stage of `subnet.miner.wrapper` on top of it, which adds the pinned affinetes server, a non-root
user and the CMD. The result is identified by its local content digest (the image id); see
`subnet.runtime.images` for the `local.invalid/...@sha256:<id>` reference used in dry runs.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from subnet.protocol.envdir import InvalidEnv, validate_env_dir
from subnet.miner.wrapper import SERVE_PY, SERVER_REQUIREMENTS, wrapper_dockerfile
from subnet.runtime.images import InvalidTag, local_reference, parse_tag
from subnet.util.text import one_line

__all__ = ["BuiltImage", "BuildFailed", "DockerUnavailable", "InvalidEnv", "InvalidTag", "build_env_image"]

Log = Callable[[str], None]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_COMMAND = re.compile(r"^The command '.*' ", re.S)


class BuildFailed(RuntimeError):
    """A Docker build failed; the message is one line naming the stage and the error."""


class DockerUnavailable(RuntimeError):
    """No Docker daemon answers."""


@dataclass(frozen=True)
class BuiltImage:
    tag: str  # the local tag given to the Actor image, e.g. "my-env:dev"
    image_id: str  # local content digest, "sha256:<64 hex>"
    reference: str  # "local.invalid/my-env:dev@sha256:<64 hex>", usable as Submission.source

    @property
    def digest(self) -> str:
        return self.image_id


def docker_client(client: Any = None) -> Any:
    """`client`, or a client for the local daemon; raises `DockerUnavailable` in one line."""
    if client is not None:
        return client
    import docker

    try:
        new = docker.from_env()
        new.ping()
    except Exception as exc:  # noqa: BLE001
        raise DockerUnavailable(f"no Docker daemon answers: {one_line(exc, 300)}") from None
    return new


def build_env_image(
    env_dir: Path,
    tag: str,
    client: Any = None,
    *,
    network_mode: str = "host",
    nocache: bool = False,
    log: Log | None = None,
    labels: Mapping[str, str] | None = None,
) -> BuiltImage:
    """Validate `env_dir`, build it and the Actor wrapper, tag the result `tag`.

    `labels` go on the final image, inside the content its digest covers: `subnet miner build`
    puts the miner's hotkey there (`subnet.registry.client.LABEL_HOTKEY`), which binds the
    digest to its author for every validator that reads it.

    `network_mode="host"` lets `pip install` in the env's Dockerfile reach PyPI where the default
    bridge has no route out. Raises InvalidEnv / InvalidTag (bad input), DockerUnavailable,
    BuildFailed; each with a one-line message.
    """
    env_dir = validate_env_dir(Path(env_dir))
    parse_tag(tag)  # reject a bad tag before spending minutes on a build
    extra = build_labels()
    client = docker_client(client)
    emit = log or (lambda _line: None)

    emit(f"[1/2] building {env_dir} with its own Dockerfile")
    base_id = _build(client, "env Dockerfile", emit, path=str(env_dir), dockerfile="Dockerfile",
                     network_mode=network_mode, nocache=nocache, labels=extra)

    emit("[2/2] adding the affinetes Actor server (pinned PyPI packages)")
    with tempfile.TemporaryDirectory(prefix="subnet-wrapper-") as ctx:
        root = Path(ctx)
        base_config = _image_config(client, base_id)
        (root / "Dockerfile").write_text(wrapper_dockerfile(base_id, base_config))
        (root / "server-requirements.txt").write_text(SERVER_REQUIREMENTS)
        (root / "serve.py").write_text(SERVE_PY)
        image_id = _build(client, "Actor wrapper", emit, path=ctx, dockerfile="Dockerfile", tag=tag,
                          network_mode=network_mode, nocache=nocache, labels={**extra, **(labels or {})})
    return BuiltImage(tag=tag, image_id=image_id, reference=local_reference(tag, image_id))


def build_labels() -> dict[str, str]:
    """`SUBNET_BUILD_LABELS`: a JSON object of labels put on every image this package builds (both
    stages), e.g. `{"ci.job": "1234"}` so a CI job can find and remove exactly what it built."""
    raw = os.environ.get("SUBNET_BUILD_LABELS", "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise BuildFailed(f"SUBNET_BUILD_LABELS is not JSON: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise BuildFailed('SUBNET_BUILD_LABELS must be a JSON object of strings, e.g. {"ci.job": "1234"}')
    return value


def _image_config(client: Any, image_id: str) -> dict:
    try:
        return client.images.get(image_id).attrs.get("Config") or {}
    except Exception as exc:  # noqa: BLE001
        raise BuildFailed(f"inspecting the env image {image_id[:19]}: {one_line(exc, 300)}") from None


def _build(client: Any, stage: str, emit: Log, **kwargs: Any) -> str:
    """Run one build through the low-level API (streamed), return the image id."""
    import docker.errors

    try:
        events = client.api.build(rm=True, forcerm=True, pull=False, decode=True, **kwargs)
        return _follow(events, stage, emit)
    except BuildFailed:
        raise
    except docker.errors.APIError as exc:
        raise BuildFailed(f"{stage}: {one_line(exc.explanation or exc, 300)}") from None
    except Exception as exc:  # noqa: BLE001 - connection drops, bad context, ...
        raise BuildFailed(f"{stage}: {type(exc).__name__}: {one_line(exc, 300)}") from None


def _follow(events: Iterable[dict], stage: str, emit: Log) -> str:
    image_id = None
    last_step = last_output = ""
    for event in events:
        if not isinstance(event, dict):
            continue
        if "error" in event:
            where = f" at {last_step}" if last_step else ""
            said = f"{one_line(last_output, 200)} | " if last_output else ""  # usually the real reason
            error = _COMMAND.sub("the command ", str(event["error"]))  # the step already names it
            raise BuildFailed(f"{stage} failed{where}: {said}{one_line(error, 300)}")
        text = event.get("stream")
        if text:
            for line in _ANSI.sub("", text).splitlines():
                if not line.strip():
                    continue
                emit(line.rstrip())
                if line.startswith("Step "):
                    last_step, last_output = line.split(":", 1)[0].strip(), ""  # "Step 4/6"
                elif not line.lstrip().startswith(("--->", "Removing intermediate", "Running in")):
                    last_output = line.strip()
        aux = event.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = aux["ID"]
    if not image_id or not image_id.startswith("sha256:"):
        raise BuildFailed(f"{stage}: the daemon reported no image id")
    return image_id
