"""Forwarding one metered call to the upstream, streaming or not.

The call talks to the upstream in its own asyncio task (`call.worker`), so it can be cancelled from
two sides: the client leaving (the relay generator's `finally`) and the validator ending the task
(`Metering.drain`). Either way httpx closes the upstream connection, which is how an
OpenAI-compatible server learns that nobody reads the answer any more.
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
from starlette.responses import JSONResponse, Response, StreamingResponse

from subnet.gateway.metering import Call, Metering
from subnet.gateway.settings import GatewaySettings
from subnet.gateway.sse import DONE, EventSplitter, error_body, error_event, event_data, usage_of

log = logging.getLogger(__name__)
# Chunks a stream may have beyond one per completion token: the role chunk, the finish chunk, the
# usage chunk and a few empty ones. An upstream past max_tokens + this is cut.
EVENT_SLACK = 8
POOL_SIZE = 8  # connections per httpx pool (round-robin keeps them evenly used)
PASSED_HEADERS = ("retry-after", "retry-after-ms", "x-should-retry")
OPEN, END = object(), object()


def refusal(status: int, code: str, message: str, kind: str = "invalid_request_error",
            retry: bool = False) -> JSONResponse:
    # x-should-retry: false -- openai-python's `_should_retry` obeys it before looking at the status
    # (src/openai/_base_client.py), so a 402/429 from us is not retried by the SDK. An upstream
    # failure (502/504) leaves the SDK its own judgement (it retries 5xx).
    headers = {} if retry else {"x-should-retry": "false"}
    return JSONResponse(error_body(message, code, kind), status_code=status, headers=headers)


class Upstream:
    def __init__(self, settings: GatewaySettings) -> None:
        self.url = settings.llm_upstream.rstrip("/") + "/chat/completions"
        self._headers = settings.upstream_headers()  # the validator's key; never the client's headers
        timeout = httpx.Timeout(connect=settings.llm_connect_timeout_s, read=settings.llm_read_timeout_s,
                                write=settings.llm_read_timeout_s, pool=None)
        # Several small pools, not one big one: httpcore looks at every pooled connection for every
        # waiting request (httpcore/_async/connection_pool.py, `_assign_requests_to_connections`,
        # `has_expired` -> one poll() each), so one pool's CPU grows with the square of the streams;
        # at 256 streams it cost more than the relaying itself (scripts/bench_gateway.py).
        shards = max(1, -(-settings.llm_concurrency // POOL_SIZE))
        # An idle connection is dropped after 4 s, before the upstream drops it (uvicorn's default
        # keep-alive is 5 s): reusing one the server is closing fails the call with a ReadError.
        limits = httpx.Limits(max_connections=POOL_SIZE + 4, max_keepalive_connections=POOL_SIZE,
                              keepalive_expiry=4.0)
        self._pools = [httpx.AsyncClient(timeout=timeout, limits=limits) for _ in range(shards)]
        self._next = 0
        self.slots = asyncio.Semaphore(settings.llm_concurrency)  # bounded concurrency, all pools together

    async def close(self) -> None:
        for pool in self._pools:
            await pool.aclose()

    async def send(self, body: bytes, stream: bool = False) -> httpx.Response:
        self._next = (self._next + 1) % len(self._pools)
        pool = self._pools[self._next]
        return await pool.send(pool.build_request("POST", self.url, content=body, headers=self._headers),
                               stream=stream)


def _passthrough(resp: httpx.Response, content: bytes) -> Response:
    headers = {name: resp.headers[name] for name in PASSED_HEADERS if name in resp.headers}
    return Response(content, status_code=resp.status_code, headers=headers,
                    media_type=resp.headers.get("content-type", "application/json"))


def _failure(exc: httpx.HTTPError) -> tuple[int, str, bool]:
    """(status, message, whether the upstream provably generated nothing)."""
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return 502, f"LLM upstream unreachable ({type(exc).__name__})", True
    if isinstance(exc, httpx.TimeoutException):
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
    async def once() -> httpx.Response:
        async with up.slots:
            return await up.send(body)

    call.worker = asyncio.ensure_future(once())
    watcher = asyncio.ensure_future(watch_disconnect(receive, call))
    try:
        resp = await asyncio.shield(call.worker)
    except asyncio.CancelledError:
        if not call.worker.cancelled():  # we, not the worker, were cancelled
            call.abort("handler_cancelled")
            await meter.finish(call, None)
            raise
        await meter.finish(call, None)
        return _aborted(call)
    except httpx.HTTPError as exc:
        status, message, nothing = _failure(exc)
        await meter.finish(call, None, nothing_generated=nothing)
        return refusal(status, "upstream_error", message, "api_error", retry=True)
    finally:
        watcher.cancel()
    if resp.status_code != 200:
        # An upstream refusal (4xx/5xx with its error body) generated nothing: not charged.
        await meter.finish(call, None, nothing_generated=True)
        return _passthrough(resp, resp.content)
    try:
        usage = json.loads(resp.content).get("usage")
    except (ValueError, AttributeError):
        usage = None
    await meter.finish(call, usage)
    return Response(resp.content, media_type="application/json")


async def forward_stream(meter: Metering, up: Upstream, call: Call, body: bytes, want_usage: bool) -> Response:
    queue: asyncio.Queue = asyncio.Queue()
    call.worker = asyncio.ensure_future(_pump(meter, up, call, body, want_usage, queue))
    head = await queue.get()
    if head is not OPEN:
        return head  # an upstream error or an abort before the stream opened

    async def relay():
        try:
            while True:
                # What arrived meanwhile goes out in one write: under load, one send() per event
                # was the gateway's largest cost.
                items = [await queue.get()]
                while not queue.empty() and items[-1] is not END:
                    items.append(queue.get_nowait())
                ended = items[-1] is END
                data = b"".join(items[:-1] if ended else items)
                if data:
                    yield data
                if ended:
                    return
        finally:
            if not call.worker.done():
                call.abort("client_disconnected")

    return StreamingResponse(relay(), media_type="text/event-stream",
                             headers={"cache-control": "no-cache", "x-accel-buffering": "no"})


async def _pump(meter: Metering, up: Upstream, call: Call, body: bytes, want_usage: bool,
                queue: asyncio.Queue) -> None:
    usage, opened, nothing = None, False, False
    try:
        async with up.slots:
            resp = await up.send(body, stream=True)
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
    except httpx.HTTPError as exc:
        status, message, nothing = _failure(exc)
        nothing = nothing and not opened
        queue.put_nowait(error_event(message, "upstream_error") if opened
                         else refusal(status, "upstream_error", message, "api_error", retry=True))
    finally:
        queue.put_nowait(END)
        # Settled in a task of its own: this one may be cancelled, the books must still be written.
        meter.background(meter.finish(call, usage, nothing_generated=nothing))


async def _relay_events(resp: httpx.Response, call: Call, want_usage: bool, queue: asyncio.Queue) -> dict | None:
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
