"""The process runtime: each env folder's Actor in a local subprocess. TRUSTED LOCAL CODE ONLY.

There is no isolation here beyond a separate process with a scrubbed environment: use it for
your own envs and dry runs, never for strangers' code (that is what the Docker runtime is for).
The subprocess serves the affinetes HTTP protocol and is called through affinetes' URL mode, the
same call path the Docker and Basilica runtimes use.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import AsyncIterator, Mapping, Sequence

import httpx

from subnet.protocol.envdir import InvalidEnv, validate_env_dir
from subnet.protocol import FaultKind, MinerFault, Submission
from subnet.protocol.actor_auth import ACTOR_TOKEN_ENV, bearer_header
from subnet.runtime.affinetes_session import AffinetesSession
from subnet.runtime.env_loader import FAILURE_PREFIX
from subnet.util.text import one_line

# Variables a Python process needs to run; everything else of the validator's stays behind.
_BASE_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "SYSTEMROOT")


def child_environment(forward: Sequence[str]) -> dict[str, str]:
    keep = {k: os.environ[k] for k in (*_BASE_ENV, *forward) if k in os.environ}
    keep["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    keep["PYTHONUNBUFFERED"] = "1"
    keep["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "1")
    return keep


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProcessRuntime:
    name = "process"

    def __init__(
        self,
        start_timeout: float = 60.0,
        max_response_bytes: int = 1 << 20,
        forward_env: Sequence[str] = (),
    ) -> None:
        self.start_timeout = start_timeout
        self.max_response_bytes = max_response_bytes
        self.forward_env = tuple(forward_env)

    @contextlib.asynccontextmanager
    async def open(
        self, submission: Submission, environment: Mapping[str, str] | None = None
    ) -> AsyncIterator[AffinetesSession]:
        env_dir = Path(submission.source)
        try:
            validate_env_dir(env_dir, need_dockerfile=False)
        except InvalidEnv as exc:
            raise MinerFault(FaultKind.INVALID_ENV, str(exc)) from None
        port = free_port()
        with tempfile.TemporaryFile() as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "subnet.runtime.actor_host", "--env", str(env_dir), "--port", str(port),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                env={**child_environment(self.forward_env), **(environment or {})}, start_new_session=True,
            )
            session: AffinetesSession | None = None
            try:
                url = f"http://127.0.0.1:{port}"
                token = (environment or {}).get(ACTOR_TOKEN_ENV)
                auth = bearer_header(token) if token else {}  # the Actor answers 401 without it
                await wait_healthy(url, self.start_timeout, lambda: proc.returncode, log, auth)
                session = AffinetesSession.for_url(url, self.max_response_bytes).add_headers(auth)
                yield session
            finally:
                if session is not None:
                    await session.close()
                await _stop(proc)


async def wait_healthy(url: str, deadline_s: float, exited, log, headers: Mapping[str, str] | None = None) -> None:
    """Poll GET /health until it answers 200; a dead or silent server is a START_FAILED fault."""
    deadline = time.monotonic() + deadline_s
    async with httpx.AsyncClient(timeout=2.0, headers=dict(headers or {})) as client:
        while time.monotonic() < deadline:
            if exited() is not None:
                raise MinerFault(FaultKind.START_FAILED, f"exited with code {exited()} at start: {_tail(log)}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/health")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise MinerFault(FaultKind.START_FAILED, f"not healthy within {deadline_s:g}s")


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b")


def _tail(log) -> str:
    """The most telling line the server printed: the env loader's reason (the env's exception,
    file and line), else its last exception line, else its last line."""
    log.seek(0)
    lines = [ln for ln in log.read()[-8000:].decode(errors="replace").splitlines() if ln.strip()]
    reasons = [ln for ln in lines if ln.startswith(FAILURE_PREFIX)]
    telling = reasons or [ln for ln in lines if _EXCEPTION_LINE.match(ln.strip())]
    return one_line((telling or lines or ["no output"])[-1])


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """Terminate the whole process group (an Actor may have forked), then reap."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), timeout=3)
        except asyncio.TimeoutError:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()
