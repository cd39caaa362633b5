"""An ASGI app served by uvicorn on a thread of its own, with its own event loop.

Why a thread: the validator's loop verifies results and runs rounds; a slow verification there must
never delay a token of a miner's stream, and the gateway must not slow the validator either. The
socket is bound before uvicorn starts, so port 0 gives an ephemeral port known at once.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Awaitable, Callable

import uvicorn

try:  # libuv's loop: a cheaper transport per write and read than asyncio's (uvicorn[standard] uses it)
    from uvloop import new_event_loop
except ImportError:  # the asyncio loop serves the same, at more CPU per call
    from asyncio import new_event_loop

# Longer than clients keep idle connections (httpx: 5 s), so a client does not reuse a connection
# this server is closing; uvicorn's own default (5 s) races with httpx's.
KEEP_ALIVE_S = 30


def _listen(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets whose proto says TCP
    # (asyncio/base_events.py, `_set_nodelay`); socket.create_server() leaves proto 0, and Nagle's
    # algorithm then holds a response body behind its headers until the client's delayed ACK (40 ms).
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                         proto=socket.IPPROTO_TCP)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(address)
    sock.listen(2048)
    return sock


class ThreadedServer:
    def __init__(self, app, host: str, port: int, *, name: str = "gateway",
                 on_stop: Callable[[], Awaitable[None]] | None = None) -> None:
        self._app, self._name, self._on_stop = app, name, on_stop
        self._sock = _listen(host, port)
        self.host, self.port = self._sock.getsockname()[:2]
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def start(self, setup: Callable[[], Awaitable[None]] | None = None, timeout: float = 30.0) -> None:
        """Start serving; `setup` runs first on the server's loop (e.g. to make loop-bound objects)."""
        config = uvicorn.Config(self._app, log_level="warning", access_log=False, lifespan="off",
                                loop="asyncio", http="auto", timeout_graceful_shutdown=2,
                                timeout_keep_alive=KEEP_ALIVE_S)
        self._server = uvicorn.Server(config)

        def run() -> None:
            self.loop = new_event_loop()
            asyncio.set_event_loop(self.loop)
            try:
                self.loop.run_until_complete(self._serve(setup))
            except BaseException as exc:  # reported to start()'s caller
                self._error = exc
            finally:
                self._ready.set()
                self.loop.close()

        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"{self._name} did not start: {self._error or 'timed out'}")

    async def _serve(self, setup) -> None:
        if setup is not None:
            await setup()
        task = asyncio.ensure_future(self._server.serve(sockets=[self._sock]))
        while not self._server.started and not task.done():
            await asyncio.sleep(0.01)
        self._ready.set()
        await task
        if self._on_stop is not None:
            await self._on_stop()

    def on_loop(self, coro, timeout: float | None = None):
        """Run `coro` on the server's loop from another thread and return its result."""
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"{self._name}: this call blocks; it cannot run on the server's own thread")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 15.0) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        self._sock.close()
