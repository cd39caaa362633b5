"""Forwarding one metered call to the upstream, streaming or not.

The call talks to the upstream in its own asyncio task (`call.worker`), so it can be cancelled from
two sides: the client leaving (the disconnect watcher, `watch_disconnect`) and the validator ending
the task (`Metering.drain`). Either way the upstream connection is closed, which is how an
OpenAI-compatible server learns that nobody reads the answer any more.
"""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
from starlette.responses import JSONResponse, Response

from subnet.gateway.metering import Call, Metering
from subnet.gateway.settings import GatewaySettings
from subnet.gateway.sse import DONE, EventSplitter, error_body, error_event, event_data, usage_of

log = logging.getLogger(__name__)
# Chunks a stream may have beyond one per completion token: the role chunk, the finish chunk, the
# usage chunk and a few empty ones. An upstream past max_tokens + this is cut.
EVENT_SLACK = 8
PASSED_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")
OPEN, END = object(), object()
# What a failed upstream leg raises: aiohttp's errors, and TimeoutError for its socket timeouts.
UPSTREAM_ERRORS = (aiohttp.ClientError, TimeoutError)


def refusal(status: int, code: str, message: str, kind: str = "invalid_request_error",
            retry: bool = False) -> JSONResponse:
    # x-should-retry: false -- openai-python's `_should_retry` obeys it before looking at the status
    # (src/openai/_base_client.py), so a 402/429 from us is not retried by the SDK. An upstream
    # failure (502/504) leaves the SDK its own judgement (it retries 5xx).
    headers = {} if retry else {"x-should-retry": "false"}
    return JSONResponse(error_body(message, code, kind), status_code=status, headers=headers)


class Reply:
    """The upstream's answer: aiohttp's response under the few names the relay uses."""

    __slots__ = ("_resp", "status_code", "headers")

    def __init__(self, resp: aiohttp.ClientResponse) -> None:
        self._resp, self.status_code, self.headers = resp, resp.status, resp.headers

    async def aread(self) -> bytes:
        return await self._resp.read()

    def aiter_bytes(self):
        return self._resp.content.iter_any()  # bytes as they arrive, whatever their size

    async def aclose(self) -> None:
        # release() keeps the connection only when its body was read to the end; otherwise it is
        # closed, which is how the upstream learns that nobody reads the answer any more.
        self._resp.release()


class Upstream:
    """The upstream leg, on aiohttp: its C HTTP parser on plain asyncio halved the gateway's CPU per
    relayed stream against httpx + httpcore + h11 + anyio (scripts/bench_gateway.py, docs/gateway.md)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.url = settings.llm_upstream.rstrip("/") + "/chat/completions"
        self._headers = settings.upstream_headers()  # the validator's key; never the client's headers
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.llm_connect_timeout_s,
                                              sock_read=settings.llm_read_timeout_s)
        # An idle connection is dropped after 4 s, before the upstream drops it (uvicorn's default
        # keep-alive is 5 s): reusing one the server is closing would fail the call. No connection
        # limit here: `slots` bounds the calls in flight, all of them together.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=4.0), timeout=self._timeout,
            skip_auto_headers=("User-Agent",), trust_env=False)
        self.slots = asyncio.Semaphore(settings.llm_concurrency)

    async def close(self) -> None:
        await self._session.close()

    async def send(self, body: bytes) -> Reply:
        """POST the body; the answer's head has arrived, its body is for the caller to read and close."""
        return Reply(await self._session.post(self.url, data=body, headers=self._headers))


def _passthrough(resp: Reply, content: bytes) -> Response:
    headers = {name: resp.headers[name] for name in PASSED_HEADERS if name in resp.headers}
    return Response(content, status_code=resp.status_code, headers=headers,
                    media_type=resp.headers.get("content-type", "application/json"))


def _failure(exc: Exception) -> tuple[int, str, bool]:
    """(status, message, whether the upstream provably generated nothing) for aiohttp's failures."""
    if isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)):
        return 502, f"LLM upstream unreachable ({type(exc).__name__})", True
    if isinstance(exc, TimeoutError):  # aiohttp's SocketTimeoutError is one: no byte for sock_read seconds
        return 504, f"LLM upstream timed out ({type(exc).__name__})", False
    return 502, f"LLM upstream failed ({type(exc).__name__})", False


def _aborted(call: Call) -> Response:
    return refusal(402, call.cut or "aborted", "the task this call belonged to has ended")


async def watch_disconnect(receive, call: Call) -> None:
    """Abort the call when its client leaves. The request body has been read, so the next ASGI
    message is `http.disconnect` (ASGI HTTP spec; uvicorn's h11 protocol sends it on connection loss)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    call.abort("client_disconnected")


async def forward_json(meter: Metering, up: Upstream, call: Call, body: bytes, receive) -> Response:
    async def once() -> tuple[Reply, bytes]:
        async with up.slots:
            resp = await up.send(body)
            try:
                return resp, await resp.aread()
            finally:
                await resp.aclose()

    call.worker = asyncio.ensure_future(once())
    watcher = asyncio.ensure_future(watch_disconnect(receive, call))
    try:
        resp, content = await asyncio.shield(call.worker)
    except asyncio.CancelledError:
        if not call.worker.cancelled():  # we, not the worker, were cancelled
            call.abort("handler_cancelled")
            await meter.finish(call, None)
            raise
        await meter.finish(call, None)
        return _aborted(call)
    except UPSTREAM_ERRORS as exc:
        status, message, nothing = _failure(exc)
        await meter.finish(call, None, nothing_generated=nothing)
        return refusal(status, "upstream_error", message, "api_error", retry=True)
    finally:
        watcher.cancel()
    if resp.status_code != 200:
        # An upstream refusal (4xx/5xx with its error body) generated nothing: not charged.
        await meter.finish(call, None, nothing_generated=True)
        return _passthrough(resp, content)
    try:
        usage = json.loads(content).get("usage")
    except (ValueError, AttributeError):
        usage = None
    await meter.finish(call, usage)
    return Response(content, media_type="application/json")


async def forward_stream(meter: Metering, up: Upstream, call: Call, body: bytes, want_usage: bool) -> Response:
    queue: asyncio.Queue = asyncio.Queue()
    call.worker = asyncio.ensure_future(_pump(meter, up, call, body, want_usage, queue))
    head = await queue.get()
    if head is not OPEN:
        return head  # an upstream error or an abort before the stream opened

    return EventStream(call, queue)


class EventStream:
    """The text/event-stream answer, an ASGI callable fed from the call's queue. Starlette's
    StreamingResponse does the same inside an anyio task group per response; under load that
    machinery cost more than the relaying (scripts/bench_gateway.py)."""

    HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]

    def __init__(self, call: Call, queue: asyncio.Queue) -> None:
        self.call, self.queue = call, queue

    async def __call__(self, scope, receive, send) -> None:
        call, queue = self.call, self.queue
        watcher = asyncio.ensure_future(watch_disconnect(receive, call))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.HEADERS})
            while True:
                # What arrived meanwhile goes out in one write: under load, one send() per event
                # was the gateway's largest cost.
                items = [await queue.get()]
                while not queue.empty() and items[-1] is not END:
                    items.append(queue.get_nowait())
                ended = items[-1] is END
                data = b"".join(items[:-1] if ended else items)
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
                if ended:
                    break
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            if not call.worker.done():
                call.abort("client_disconnected")


async def _pump(meter: Metering, up: Upstream, call: Call, body: bytes, want_usage: bool,
                queue: asyncio.Queue) -> None:
    usage, opened, nothing = None, False, False
    try:
        async with up.slots:
            resp = await up.send(body)
            try:
                if resp.status_code != 200:
                    nothing = True
                    queue.put_nowait(_passthrough(resp, await resp.aread()))
                    return
                opened = True
                queue.put_nowait(OPEN)
                usage = await _relay_events(resp, call, want_usage, queue)
            finally:
                await resp.aclose()
    except asyncio.CancelledError:
        if call.cut == "task_ended":
            queue.put_nowait(error_event("the task this call belonged to has ended", "task_ended")
                             if opened else _aborted(call))
    except UPSTREAM_ERRORS as exc:
        status, message, nothing = _failure(exc)
        nothing = nothing and not opened
        queue.put_nowait(error_event(message, "upstream_error") if opened
                         else refusal(status, "upstream_error", message, "api_error", retry=True))
    finally:
        queue.put_nowait(END)
        # Settled in a task of its own: this one may be cancelled, the books must still be written.
        meter.background(meter.finish(call, usage, nothing_generated=nothing))


async def _relay_events(resp: Reply, call: Call, want_usage: bool, queue: asyncio.Queue) -> dict | None:
    splitter, events, usage = EventSplitter(), 0, None
    limit = call.plan.max_tokens + EVENT_SLACK
    async for chunk in resp.aiter_bytes():
        out = []
        for event in splitter.feed(chunk):
            data = event_data(event)
            if not data.startswith(DONE):
                found, usage_only = usage_of(data)
                usage = found or usage
                if usage_only and not want_usage:
                    continue  # the client did not ask for it; its code may index choices[0]
                events += 1
                if events > limit:  # the upstream ignores max_tokens: cut, charge the reservation
                    call.cut = "budget"
                    out.append(error_event("LLM budget exhausted: the stream passed its max_tokens",
                                           "budget_exhausted"))
                    queue.put_nowait(b"".join(out))
                    return None
            out.append(event + b"\n\n")
        if out:
            queue.put_nowait(b"".join(out))
    return usage
