"""Call an Actor through affinetes' own HTTP executor, hardened for untrusted servers.

Every runtime ends here: it has an Actor server at some URL (a local process, a container's
bridge IP, a Basilica deployment) and calls it with `affinetes.load_env(mode="url")`. We swap the
executor's httpx client for one with a response cap, enforce the validator's deadline around each
call, and map whatever goes wrong to a `MinerFault` with a kind and one line of detail.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Mapping

import httpx

from subnet.protocol import FaultKind, MinerFault
from subnet.runtime.http_guard import ResponseTooLarge, capped_client
from subnet.util.text import exception_chain, one_line

log = logging.getLogger(__name__)
_FUNCTION_BASED = "function_based"


def load_url_env(base_url: str) -> Any:
    """An affinetes EnvironmentWrapper over `base_url`, with no network I/O at load time."""
    import affinetes
    from affinetes.core import get_registry
    from affinetes.utils.logger import logger as affinetes_logger

    affinetes_logger.setLevel(logging.ERROR)  # it logs every load and close, and name clashes
    # Passing the env type skips affinetes' endpoint probe, which would run a nested event loop.
    env = affinetes.load_env(mode="url", base_url=base_url, env_type_override=_FUNCTION_BASED)
    # The global registry keys envs by URL and second, so names clash; the session owns teardown.
    get_registry().unregister(env.name)
    return env


def install_capped_client(env: Any, max_response_bytes: int, params: dict[str, str] | None = None) -> None:
    """Replace the executor's unbounded httpx client with a capped one."""
    executor = env._backend._http_executor
    executor.client = capped_client(max_response_bytes, params=params)


class AffinetesSession:
    """An `ActorSession` over an affinetes EnvironmentWrapper.

    `gpu_type` and `hourly_price` describe the box the Actor runs on, where a runtime knows it
    (Basilica); scoring prices each task by them.
    """

    gpu_type: str | None = None
    hourly_price: float | None = None

    def __init__(self, env: Any, max_response_bytes: int, params: dict[str, str] | None = None) -> None:
        self._env = env
        install_capped_client(env, max_response_bytes, params)

    @classmethod
    def for_url(cls, base_url: str, max_response_bytes: int, params: dict[str, str] | None = None) -> "AffinetesSession":
        return cls(load_url_env(base_url), max_response_bytes, params)

    async def call(self, method: str, kwargs: Mapping[str, Any], timeout: float) -> Any:
        remote = getattr(self._env, method)
        try:
            return await asyncio.wait_for(remote(**kwargs), timeout=timeout)
        except asyncio.TimeoutError:
            fault = MinerFault(FaultKind.TIMEOUT, f"no answer within {timeout:g}s")
        except Exception as exc:  # noqa: BLE001 - every failure becomes a named fault
            fault = classify_call_error(exc)
        # Raised outside the except block so the fault carries no __context__: the original
        # traceback pins httpcore's half-read stream generators, which must be finalised now,
        # inside the event loop, not whenever the fault object is dropped.
        raise fault

    def add_headers(self, headers: Mapping[str, str]) -> "AffinetesSession":
        """Send `headers` on every later request to the Actor, /health and /methods included.

        affinetes' HTTP executor sends every request through one `httpx.AsyncClient` and takes no
        per-request headers (affinetes 0.2.0 `affinetes/infrastructure/http_executor.py`:
        `self.client.post(...)`, `self.client.get(...)`), so headers set on that client ride on
        every call. Returns the session, so a caller can chain it after `for_url`.
        """
        self._env._backend._http_executor.client.headers.update(dict(headers))
        return self

    async def close(self) -> None:
        await self._env.cleanup()


def classify_call_error(exc: BaseException) -> MinerFault:
    """Map an exception raised through affinetes to a miner fault kind."""
    for cause in exception_chain(exc):
        if isinstance(cause, ResponseTooLarge):
            return MinerFault(FaultKind.OVERSIZED, str(cause))
        if isinstance(cause, httpx.HTTPStatusError):
            return _from_status(cause.response)
        if isinstance(cause, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)):
            return MinerFault(FaultKind.UNREACHABLE, f"{type(cause).__name__}: {one_line(str(cause))}")
        if isinstance(cause, httpx.TimeoutException):
            return MinerFault(FaultKind.TIMEOUT, type(cause).__name__)
        if isinstance(cause, ValueError) and "JSON" in f"{type(cause).__name__} {cause}":
            return MinerFault(FaultKind.BAD_OUTPUT, "response is not JSON")
    root = exception_chain(exc)[-1]
    if "Remote execution failed" in str(root) and "exceeded timeout" in str(root):
        return MinerFault(FaultKind.TIMEOUT, "the Actor server's own timeout fired")
    return MinerFault(FaultKind.ERROR, f"{type(root).__name__}: {one_line(str(root))}")


def _from_status(response: httpx.Response) -> MinerFault:
    """The affinetes server answers 404 for a missing method and 500 with the exception text."""
    try:
        detail = str(response.json().get("detail", ""))
    except Exception:  # noqa: BLE001 - a hostile body is just an unhelpful one
        detail = ""
    message = one_line(detail.split("\n", 1)[0]) or f"HTTP {response.status_code}"
    if response.status_code == 404:
        return MinerFault(FaultKind.NO_METHOD, message)
    return MinerFault(FaultKind.ERROR, f"HTTP {response.status_code}: {message}")


async def release_env(env: Any) -> None:
    """Close affinetes' side of an Actor (HTTP client, registry entry), not its container."""
    from affinetes.core import get_registry

    env._backend._container = None  # the runtime removes the container itself, off the event loop
    try:
        await env.cleanup()
    except Exception as exc:  # noqa: BLE001
        log.warning("closing the Actor's HTTP client failed: %s", one_line(exc))
    finally:
        get_registry().unregister(env.name)
