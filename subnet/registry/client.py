"""Read an image's manifest and config from its registry (OCI distribution API v2 over httpx),
without pulling or running it.

Used for two things: the miner's hotkey label that `subnet miner build` writes into the image
(`LABEL_HOTKEY`, covered by the digest), and telling "this digest is not in the registry" (the
miner's fault: they committed a local image id, or deleted the image) apart from "the registry
is down" (infrastructure). Anonymous pulls only: a 401 with a Bearer challenge is answered with
an anonymous token, as `docker pull` does for public images.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import httpx

from subnet.protocol.commitment import ImageRef
from subnet.protocol import FaultKind, InfraFault, MinerFault
from subnet.registry.policy import is_loopback_registry
from subnet.util.text import one_line

LABEL_HOTKEY = "io.subnet.miner.hotkey"
MAX_DOCUMENT_BYTES = 4 << 20
_MANIFEST_TYPES = ", ".join((
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
))
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


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
    def __init__(self, client: httpx.AsyncClient | None = None, timeout_s: float = 15.0) -> None:
        self._client = client or httpx.AsyncClient(timeout=timeout_s, follow_redirects=True)
        self._tokens: dict[tuple[str, str], str] = {}

    async def close(self) -> None:
        await self._client.aclose()

    async def facts(self, ref: ImageRef, platform: str = "linux/amd64") -> ImageFacts:
        """The image's labels. Raises MinerFault(image_missing) when the registry does not have
        the committed digest, InfraFault when the registry cannot be asked."""
        base, repo = registry_base(ref.registry), repository_path(ref)
        manifest = await self._manifest(ref, base, repo)
        if "manifests" in manifest:  # an index: the platform's own manifest
            chosen = _pick_platform(manifest["manifests"], platform)
            if chosen is None:
                raise MinerFault(FaultKind.IMAGE_MISSING, f"{ref.pinned}: no {platform} image in the index")
            manifest = await self._json(ref, base, f"/v2/{repo}/manifests/{chosen}", _MANIFEST_TYPES)
        config_digest = (manifest.get("config") or {}).get("digest")
        if not config_digest:
            raise MinerFault(FaultKind.IMAGE_MISSING, f"{ref.pinned}: the manifest names no image config")
        config = await self._json(ref, base, f"/v2/{repo}/blobs/{config_digest}", "*/*")
        labels = (config.get("config") or {}).get("Labels") or {}
        return ImageFacts(ref.digest, {str(k): str(v) for k, v in labels.items()})

    async def exists(self, ref: ImageRef) -> bool:
        """Whether the registry has the digest (False only on "manifest unknown")."""
        try:
            await self._manifest(ref, registry_base(ref.registry), repository_path(ref))
        except MinerFault:
            return False
        return True

    async def _manifest(self, ref: ImageRef, base: str, repo: str) -> dict:
        try:
            return await self._json(ref, base, f"/v2/{repo}/manifests/{ref.digest}", _MANIFEST_TYPES)
        except InfraFault:
            # The reference registry answers 500, not 404, when the digest is a blob rather than
            # a manifest: the classic mistake of committing the local image id (the config digest).
            blob = await self._get(ref, f"{base}/v2/{repo}/blobs/{ref.digest}", "*/*", method="HEAD")
            if blob.status_code == 200:
                raise MinerFault(FaultKind.IMAGE_MISSING,
                                 f"{ref.pinned}: that digest is the image's config (the local image id), "
                                 "not its manifest digest (manifest unknown)") from None
            raise

    async def _json(self, ref: ImageRef, base: str, path: str, accept: str) -> dict:
        response = await self._get(ref, base + path, accept)
        if response.status_code == 401 and await self._authorize(ref, response):
            response = await self._get(ref, base + path, accept)
        if response.status_code == 404:
            raise MinerFault(FaultKind.IMAGE_MISSING,
                             f"{ref.pinned}: the registry has no such image (manifest unknown); push it, then commit its digest")
        if response.status_code in (401, 403):
            raise MinerFault(FaultKind.IMAGE_MISSING, f"{ref.pinned}: the registry refuses anonymous pulls ({response.status_code}); make the image public")
        if response.status_code != 200:
            raise InfraFault(f"registry {ref.registry} answered {response.status_code} for {ref.pinned}")
        if len(response.content) > MAX_DOCUMENT_BYTES:
            raise MinerFault(FaultKind.IMAGE_MISSING, f"{ref.pinned}: registry document over {MAX_DOCUMENT_BYTES} bytes")
        try:
            data = json.loads(response.content)
        except ValueError:
            raise InfraFault(f"registry {ref.registry} sent a document that is not JSON") from None
        return data if isinstance(data, dict) else {}

    async def _get(self, ref: ImageRef, url: str, accept: str, method: str = "GET") -> httpx.Response:
        headers = {"Accept": accept}
        token = self._tokens.get((ref.registry, ref.repository))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            return await self._client.request(method, url, headers=headers)
        except httpx.HTTPError as exc:
            raise InfraFault(f"registry {ref.registry}: {type(exc).__name__}: {one_line(str(exc), 200)}") from None

    async def _authorize(self, ref: ImageRef, response: httpx.Response) -> bool:
        """Answer a Bearer challenge with an anonymous pull token."""
        scheme, _, params = response.headers.get("www-authenticate", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        challenge = dict(_CHALLENGE.findall(params))
        realm = challenge.get("realm", "")
        if not realm.startswith("https://") and not realm.startswith("http://127.0.0.1"):
            return False
        query = {"service": challenge.get("service", ""), "scope": f"repository:{repository_path(ref)}:pull"}
        try:
            answer = await self._client.get(realm, params=query)
            token = answer.json().get("token") or answer.json().get("access_token")
        except (httpx.HTTPError, ValueError, AttributeError):
            raise InfraFault(f"registry {ref.registry}: no anonymous token from {realm}") from None
        if not token:
            return False
        self._tokens[(ref.registry, ref.repository)] = token
        return True


def _pick_platform(manifests: list, platform: str) -> str | None:
    os_name, _, arch = platform.partition("/")
    for entry in manifests:
        p = entry.get("platform") or {}
        if p.get("os") == os_name and p.get("architecture") == arch:
            return entry.get("digest")
    return None
