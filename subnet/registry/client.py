"""Read an image's manifest and config from its registry (OCI distribution API v2 over httpx),
without pulling or running it — and believe nothing that does not hash to what was committed.

Used for two things: the miner's hotkey label that `subnet miner build` writes into the image
(`LABEL_HOTKEY`, covered by the digest), and telling "this digest is not in the registry" (the
miner's fault: they committed a local image id, or deleted the image) apart from "the registry
is down" (infrastructure). Anonymous pulls only: a 401 with a Bearer challenge is answered with
an anonymous token, as `docker pull` does for public images.

The registry is the committing miner's choice, so every read is bounded (`subnet.registry.fetch`:
one deadline per request, bodies cut at `MAX_DOCUMENT_BYTES`, redirects and token realms checked
against the registry policy, JSON depth checked before parsing) and every document is verified:
the manifest's sha256 must be the committed digest (an index's chosen entry: its own digest), the
config's must be the manifest's config digest. Anything else is `bad_image`, the miner's fault,
and no label from it is believed. A fault found in content that *does* hash to the digest is a
`ProvenFault`: the same from every registry, for good, so the validator may remember it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

from subnet.protocol.commitment import ImageRef
from subnet.protocol import FaultKind, InfraFault, MinerFault
from subnet.registry.fetch import (
    MAX_JSON_DEPTH,
    HopPolicy,
    HopRefused,
    Reply,
    TooLarge,
    TooManyRedirects,
    exchange,
    json_depth,
)
from subnet.registry.policy import is_loopback_registry
from subnet.util.text import one_line

LABEL_HOTKEY = "io.subnet.miner.hotkey"
MAX_DOCUMENT_BYTES = 4 << 20  # the reference registry's own limit for a manifest
MAX_TOKEN_BYTES = 64 << 10
MAX_LABEL_CHARS = 256  # a hotkey is 48; anything longer names nobody and is not kept whole
_MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
_DIGEST = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$")
_TOKEN = re.compile(r"^[\x21-\x7e]{1,8192}$")  # printable, no spaces: safe in a header


class RegistryAnswered(InfraFault):
    """The registry answered with a status that says nothing about the miner (5xx, 429, ...)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ProvenFault(MinerFault):
    """A miner fault in content that hashes to the committed digest: true of that digest forever."""


@dataclass(frozen=True)
class ImageFacts:
    digest: str
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def hotkey(self) -> str | None:
        return self.labels.get(LABEL_HOTKEY) or None


def registry_base(registry: str) -> str:
    """The API base URL: plain HTTP only for loopback registries (as Docker does), else HTTPS."""
    if registry == "docker.io":
        return "https://registry-1.docker.io"
    return f"{'http' if is_loopback_registry(registry) else 'https'}://{registry}"


def repository_path(ref: ImageRef) -> str:
    if ref.registry == "docker.io" and "/" not in ref.repository:
        return f"library/{ref.repository}"
    return ref.repository


class RegistryClient:
    """`timeout_s` bounds each request whole (connect, headers, body, redirects); `policy` says
    where redirects and token realms may lead (default: the real networks' registry policy)."""

    def __init__(self, client: httpx.AsyncClient | None = None, timeout_s: float = 15.0,
                 policy: HopPolicy | None = None) -> None:
        self._client = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)
        self._timeout = timeout_s
        self._policy = policy or HopPolicy()
        self._tokens: dict[tuple[str, str], str] = {}

    async def close(self) -> None:
        await self._client.aclose()

    async def facts(self, ref: ImageRef, platform: str = "linux/amd64") -> ImageFacts:
        """The image's labels, from verified content. Raises MinerFault (`image_missing`: the
        registry does not have the digest; `bad_image`: what it served does not verify) or
        InfraFault (the registry cannot be asked)."""
        repo = repository_path(ref)
        manifest = _verified_json(ref, await self._manifest(ref, repo, ref.digest), ref.digest, "manifest")
        if "manifests" in manifest:  # an index: the platform's own manifest, verified against its entry
            entry = _pick_platform(manifest["manifests"], platform)
            if entry is None:
                raise ProvenFault(FaultKind.IMAGE_MISSING, f"{ref.pinned}: no {platform} image in the index")
            child = _checked_digest(ref, entry.get("digest"), f"{platform} index entry")
            manifest = _verified_json(ref, await self._document(ref, f"/v2/{repo}/manifests/{child}", _MANIFEST_TYPES),
                                      child, f"{platform} manifest")
            if "manifests" in manifest:
                raise ProvenFault(FaultKind.BAD_IMAGE, f"{ref.pinned}: the {platform} entry of the index is another index")
        config_digest = _checked_digest(ref, _get(manifest, "config", "digest"), "manifest's config")
        config = _verified_json(ref, await self._document(ref, f"/v2/{repo}/blobs/{config_digest}", "*/*"),
                                config_digest, "image config")
        labels = _get(config, "config", "Labels")
        labels = labels if isinstance(labels, dict) else {}
        return ImageFacts(ref.digest, {str(k)[:MAX_LABEL_CHARS]: str(v)[:MAX_LABEL_CHARS] for k, v in labels.items()})

    async def _manifest(self, ref: ImageRef, repo: str, digest: str) -> bytes:
        try:
            return await self._document(ref, f"/v2/{repo}/manifests/{digest}", _MANIFEST_TYPES)
        except RegistryAnswered as exc:
            # The reference registry answers 500, not 404, when the digest is a blob rather than
            # a manifest: the classic mistake of committing the local image id (the config digest).
            if exc.status < 500:
                raise
            blob = await self._send(ref, f"/v2/{repo}/blobs/{digest}", "*/*", method="HEAD")
            if blob.status == 200:
                raise MinerFault(FaultKind.IMAGE_MISSING,
                                 f"{ref.pinned}: that digest is the image's config (the local image id), "
                                 "not its manifest digest (manifest unknown)") from None
            raise

    async def _document(self, ref: ImageRef, path: str, accept: str) -> bytes:
        reply = await self._send(ref, path, accept)
        if reply.status == 401 and await self._authorize(ref, reply):
            reply = await self._send(ref, path, accept)
        if reply.status == 404:
            raise MinerFault(FaultKind.IMAGE_MISSING,
                             f"{ref.pinned}: the registry has no such image (manifest unknown); push it, then commit its digest")
        if reply.status in (401, 403):
            raise MinerFault(FaultKind.IMAGE_MISSING, f"{ref.pinned}: the registry refuses anonymous pulls ({reply.status}); make the image public")
        if reply.status != 200:
            raise RegistryAnswered(reply.status, f"registry {ref.registry} answered {reply.status} for {ref.pinned}")
        return reply.body

    async def _send(self, ref: ImageRef, path: str, accept: str, method: str = "GET") -> Reply:
        headers = {"Accept": accept}
        token = self._tokens.get((ref.registry, ref.repository))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        url = registry_base(ref.registry) + path
        return await self._bounded(ref, method, url, headers, MAX_DOCUMENT_BYTES, "request")

    async def _bounded(self, ref: ImageRef, method: str, url: str | httpx.URL, headers: dict[str, str],
                       cap: int, what: str) -> Reply:
        """One exchange under one deadline; its failures as the miner's or infrastructure's."""
        try:
            return await asyncio.wait_for(exchange(self._client, method, url, headers, cap, self._policy), self._timeout)
        except asyncio.TimeoutError:
            raise InfraFault(f"registry {ref.registry}: no complete answer to a {what} within {self._timeout:g}s") from None
        except TooLarge as exc:
            raise MinerFault(FaultKind.BAD_IMAGE, f"{ref.pinned}: the registry sent {exc}") from None
        except (HopRefused, TooManyRedirects) as exc:
            raise MinerFault(FaultKind.BAD_IMAGE, f"{ref.pinned}: {one_line(str(exc), 240)}") from None
        except httpx.HTTPError as exc:
            raise InfraFault(f"registry {ref.registry}: {type(exc).__name__}: {one_line(str(exc), 200)}") from None

    async def _authorize(self, ref: ImageRef, response: Reply) -> bool:
        """Answer a Bearer challenge with an anonymous pull token from a realm the policy allows."""
        scheme, _, params = response.headers.get("www-authenticate", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        challenge = dict(_CHALLENGE.findall(params))
        try:
            realm = httpx.URL(challenge.get("realm", ""))
            await self._policy.check(realm, "token realm")
        except (httpx.InvalidURL, HopRefused) as exc:
            raise MinerFault(FaultKind.BAD_IMAGE, f"{ref.pinned}: {one_line(str(exc), 240)}") from None
        query = {"service": challenge.get("service", ""), "scope": f"repository:{repository_path(ref)}:pull"}
        reply = await self._bounded(ref, "GET", realm.copy_merge_params(query), {"Accept": "application/json"},
                                    MAX_TOKEN_BYTES, "token request")
        answer = _json(reply.body) if reply.status == 200 else None
        token = (answer.get("token") or answer.get("access_token")) if isinstance(answer, dict) else None
        if not isinstance(token, str) or not _TOKEN.match(token):
            raise InfraFault(f"registry {ref.registry}: no anonymous token from {realm.host} ({reply.status})")
        self._tokens[(ref.registry, ref.repository)] = token
        return True


def _verified_json(ref: ImageRef, body: bytes, digest: str, what: str) -> dict:
    """`body` as a JSON object, only if it hashes to `digest`; else the miner's `bad_image`."""
    algorithm, _, expected = digest.partition(":")
    actual = hashlib.new(algorithm, body).hexdigest()
    if actual != expected:
        raise MinerFault(FaultKind.BAD_IMAGE, f"{ref.pinned}: the registry's {what} does not match its digest "
                                              f"{digest[:19]}… (it hashes to {algorithm}:{actual[:12]}…)")
    data = _json(body)
    if not isinstance(data, dict):
        why = "is nested too deeply" if data is _TOO_DEEP else "is not a JSON object"
        raise ProvenFault(FaultKind.BAD_IMAGE, f"{ref.pinned}: the {what} {why}")
    return data


_TOO_DEEP = object()


def _json(body: bytes) -> Any:
    """Parsed JSON, `_TOO_DEEP` past `MAX_JSON_DEPTH` levels (checked before parsing), None if not JSON."""
    if json_depth(body) > MAX_JSON_DEPTH:
        return _TOO_DEEP
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _checked_digest(ref: ImageRef, value: Any, what: str) -> str:
    if isinstance(value, str) and _DIGEST.match(value):
        return value
    shown = "no digest" if value is None else f"digest {one_line(repr(value), 40)}"
    raise ProvenFault(FaultKind.BAD_IMAGE, f"{ref.pinned}: the {what} has {shown}, not sha256:<64 hex>")


def _get(document: dict, *keys: str) -> Any:
    node: Any = document
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _pick_platform(manifests: Any, platform: str) -> dict | None:
    os_name, _, arch = platform.partition("/")
    for entry in manifests if isinstance(manifests, list) else []:
        p = _get(entry, "platform")
        if isinstance(p, dict) and p.get("os") == os_name and p.get("architecture") == arch:
            return entry
    return None
