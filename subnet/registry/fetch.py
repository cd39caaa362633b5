"""One HTTP exchange with a registry a stranger chose, under limits the stranger cannot move.

A miner's commitment names the registry the validator reads, so the server on the other end may be
hostile: it may trickle, never end a chunked body, send gigabytes, nest JSON a million levels deep,
or redirect the validator to its own network. Here:

- the caller bounds the whole exchange (connect, headers, body, redirects) with one deadline;
- a body is streamed and cut at `cap` bytes: never buffered past it, whatever Content-Length says;
- redirects are followed by hand, at most `MAX_REDIRECTS`, and every target must pass the same
  `HopPolicy` as a token realm (parsed URL, exact host, never a string prefix); the Authorization
  header never leaves the origin it was issued for;
- JSON nesting is measured before parsing (`json_depth`), so `json.loads` never recurses deeply.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import re
import zlib
from dataclasses import dataclass
from typing import Sequence

import httpx

from subnet.registry.policy import RegistryRefused, Resolver, check_registry, is_loopback_registry

MAX_REDIRECTS = 5
MAX_JSON_DEPTH = 32
_REDIRECTS = {301, 302, 303, 307, 308}
# A JSON string: a quote, then runs of plain bytes or escapes, then a quote (linear, no backtracking).
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class HopRefused(Exception):
    """A redirect target or token realm this validator will not contact; one line says why."""


class TooLarge(Exception):
    """A body over the cap; one line says how large."""


class TooManyRedirects(Exception):
    """More than `MAX_REDIRECTS` redirects in one exchange."""


@dataclass(frozen=True)
class Reply:
    status: int
    headers: httpx.Headers
    body: bytes
    url: httpx.URL


@dataclass(frozen=True)
class HopPolicy:
    """Where an exchange may go besides the registry the commitment named (already checked).

    `loopback_only` (the devchain): every hop stays on this machine. Otherwise a hop must pass
    `registry_policy.check_registry` (no loopback, private, link-local or local names unless
    allowlisted), and plain HTTP is allowed only to a loopback host, as for registries."""

    loopback_only: bool = False
    allowed: Sequence[str] = ()
    resolve: Resolver | None = None

    async def check(self, url: httpx.URL, what: str) -> None:
        if url.scheme not in ("http", "https") or not url.host:
            raise HopRefused(f"{what} {_show(url)} is not an http(s) URL")
        host = f"[{url.host}]" if ":" in url.host else url.host
        hostport = f"{host}:{url.port}" if url.port else host
        loopback = is_loopback_registry(hostport)
        if url.scheme == "http" and not loopback:
            raise HopRefused(f"{what} {_show(url)} is plain HTTP to a host that is not this machine")
        if self.loopback_only:
            if not loopback:
                raise HopRefused(f"{what} {_show(url)} leaves this machine (the devchain reads loopback registries only)")
            return
        try:  # may resolve a name: off the event loop
            await asyncio.to_thread(check_registry, hostport, self.allowed, self.resolve)
        except RegistryRefused as exc:
            raise HopRefused(f"{what} {_show(url)} refused: {exc}") from None


async def exchange(client: httpx.AsyncClient, method: str, url: str | httpx.URL, headers: dict[str, str],
                   cap: int, policy: HopPolicy) -> Reply:
    """`method url`, redirects followed under `policy`, body cut at `cap` (raises TooLarge).

    No deadline of its own: the caller wraps the whole exchange in one."""
    url = httpx.URL(url)
    origin = _origin(url)
    for _ in range(MAX_REDIRECTS + 1):
        sent = headers if _origin(url) == origin else {k: v for k, v in headers.items() if k.lower() != "authorization"}
        async with client.stream(method, url, headers={**sent, "Accept-Encoding": "identity"}) as response:
            if response.status_code in _REDIRECTS and "location" in response.headers:
                try:
                    target = url.join(response.headers["location"])
                except httpx.InvalidURL:
                    raise HopRefused(f"redirect to an invalid URL from {_show(url)}") from None
                await policy.check(target, "redirect to")
                method = "GET" if response.status_code == 303 and method != "HEAD" else method
                url = target
                continue
            # Only a success's body is ever used: an error's is not read at all.
            wanted = method != "HEAD" and 200 <= response.status_code < 300
            body = await _read_capped(response, cap) if wanted else b""
            return Reply(response.status_code, response.headers, body, url)
    raise TooManyRedirects(f"more than {MAX_REDIRECTS} redirects from {_show(httpx.URL(url))}")


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise TooLarge(f"a body of {int(declared)} bytes (the cap is {cap})")
    if response.is_stream_consumed:  # an in-process transport hands the body over already read
        raw = response.content
        if len(raw) > cap:
            raise TooLarge(f"a body over {cap} bytes")
        return raw
    body = bytearray()
    async for chunk in response.aiter_raw():  # raw: no decoder can expand it behind our back
        body += chunk
        if len(body) > cap:
            raise TooLarge(f"a body over {cap} bytes")
    return _decoded(bytes(body), response.headers.get("content-encoding", ""), cap)


def _decoded(body: bytes, encoding: str, cap: int) -> bytes:
    """We ask for `identity`; a server that gzips anyway is decoded, never past the cap."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate"):
        raise TooLarge(f"a body in the {encoding[:20]!r} encoding, which was not asked for")
    decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    try:
        out = decoder.decompress(body, cap + 1)
    except zlib.error:
        raise TooLarge(f"a {encoding} body that does not decode") from None
    if len(out) > cap or decoder.unconsumed_tail:
        raise TooLarge(f"a {encoding} body that decodes to over {cap} bytes")
    return out


def json_depth(data: bytes) -> int:
    """The deepest nesting of `[`/`{` in a JSON document, counted outside strings; linear time.

    Strings are cut out first (a bracket in a string does not nest); then the running depth is
    the number of openers minus closers so far, and its maximum is found by C-level iterators."""
    brackets = _JSON_STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if not brackets:
        return 0
    # opener → 2, closer → 0: depth after i brackets = (sum of the first i values) − i
    steps = brackets.translate(bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00"))
    return max(map(operator.sub, itertools.accumulate(steps), itertools.count(1)))


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _show(url: httpx.URL) -> str:
    text = str(url.copy_with(query=None, fragment=None))
    return text if len(text) <= 120 else text[:119] + "…"
