"""An httpx transport that refuses response bodies over a byte cap.

affinetes' HTTP executor reads whole bodies with no limit; a hostile Actor could answer with
gigabytes. The cap is enforced while streaming, so the validator never holds more than the cap.
"""

from __future__ import annotations

from typing import AsyncIterator

import functools
import ssl

import httpx


class ResponseTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"response body exceeds {limit} bytes")
        self.limit = limit


class _CappedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        seen = 0
        chunks = self._inner.__aiter__()
        async for chunk in chunks:
            seen += len(chunk)
            if seen > self._limit:
                # Close the half-read connection now, in this task, rather than leaving its
                # generator to the garbage collector.
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
                await self._inner.aclose()
                raise ResponseTooLarge(self._limit)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class CappedTransport(httpx.AsyncBaseTransport):
    def __init__(self, limit: int, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self._limit = limit
        self._inner = inner or httpx.AsyncHTTPTransport(
            verify=tls_context(), limits=httpx.Limits(max_connections=256, max_keepalive_connections=64)
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._limit:
            await response.aclose()
            raise ResponseTooLarge(self._limit)
        return httpx.Response(
            status_code=response.status_code,
            headers=response.headers,
            stream=_CappedStream(response.stream, self._limit),  # type: ignore[arg-type]
            extensions=response.extensions,
            request=request,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


@functools.lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context for every Actor client: loading CA certificates costs ~40 ms."""
    return ssl.create_default_context()


def capped_client(limit: int, connect_timeout: float = 10.0, params: dict[str, str] | None = None) -> httpx.AsyncClient:
    """A client for Actor calls: capped bodies; the per-call deadline is the caller's.
    `params` ride on every request (a private deployment's share token)."""
    return httpx.AsyncClient(
        params=params,
        transport=CappedTransport(limit),
        timeout=httpx.Timeout(connect=connect_timeout, read=None, write=30.0, pool=None),
    )
