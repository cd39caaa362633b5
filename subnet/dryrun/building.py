"""Dry runs in Docker: build each env folder into an Actor image, then run it hardened.

The build happens inside `open`, that is during the round's start phase, before any miner's
clock runs. A folder that is not an env, or whose Dockerfile fails to build, is that miner's
fault; a Docker daemon that does not answer is nobody's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from pathlib import Path
from typing import Any, AsyncIterator, Iterable, Mapping

from subnet.util.progress import step
from subnet.protocol import FaultKind, InfraFault, MinerFault, Submission
from subnet.util.text import one_line

_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)", re.IGNORECASE | re.MULTILINE)


class BuildingDockerRuntime:
    name = "docker"

    def __init__(self, inner: Any, tag_prefix: str = "subnet-dry-run") -> None:
        self.inner = inner  # a DockerRuntime that accepts local references
        self.tag_prefix = tag_prefix

    def __getattr__(self, name: str) -> Any:  # the inner runtime's GPUs, limits, housekeeping
        return getattr(self.inner, name)

    async def prepare(self, submission: Submission) -> None:
        """Nothing to pull: the source is an env folder, built into an image by `open` (the inner
        runtime's `prepare` would take the folder for an image reference)."""

    @contextlib.asynccontextmanager
    async def open(self, submission: Submission, environment: Mapping[str, str] | None = None) -> AsyncIterator[Any]:
        from subnet.miner.build import BuildFailed, DockerUnavailable, InvalidEnv, build_env_image

        tag = f"{self.tag_prefix}/uid{submission.uid}:{submission.digest[7:19]}"
        who = f"uid {submission.uid} {Path(submission.source).name}"
        started = time.monotonic()
        step(who, "building the image")
        outcome = "build failed"
        try:
            built = await asyncio.to_thread(build_env_image, Path(submission.source), tag, log=_build_steps(who))
            outcome = f"built {tag}"
        except InvalidEnv as exc:
            raise MinerFault(FaultKind.INVALID_ENV, str(exc)) from None
        except BuildFailed as exc:
            raise MinerFault(FaultKind.INVALID_ENV, f"image build failed: {exc}") from None
        except DockerUnavailable as exc:
            raise InfraFault(str(exc)) from None
        finally:
            step(who, f"{outcome} in {time.monotonic() - started:.0f}s", done=True)
        image = dataclasses.replace(submission, source=built.reference)
        async with (self.inner.open(image, environment) if environment else self.inner.open(image)) as session:
            yield session


def _build_steps(who: str):
    """Docker's build output, reduced to its steps ("[1/2] …", "Step 3/7 : RUN …"): one each."""

    def emit(line: str) -> None:
        if line.startswith(("[1/2]", "[2/2]", "Step ")):
            step(who, one_line(line, 120))

    return emit


def base_images(env_dirs: Iterable[Path]) -> set[str]:
    """The images the env folders' Dockerfiles start FROM (stage aliases excluded)."""
    images: set[str] = set()
    for env_dir in env_dirs:
        dockerfile = Path(env_dir) / "Dockerfile"
        if not dockerfile.is_file():
            continue
        text = dockerfile.read_text(errors="replace")
        aliases = {m.lower() for m in re.findall(r"\bAS\s+(\S+)", text, re.IGNORECASE)}
        images |= {name for name in _FROM.findall(text) if name.lower() not in aliases and name != "scratch"}
    return images
