"""Registry documents that verify: an image config, its manifest and an index, as the OCI image spec
lays them out (image-spec manifest.md / image-index.md: `config.digest` and each `manifests[].digest`
is the sha256 of the exact bytes served), plus an in-process registry serving them by digest."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import httpx

from subnet.registry.client import LABEL_HOTKEY

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Image:
    config: bytes
    manifest: bytes

    @property
    def digest(self) -> str:
        return sha(self.manifest)

    @property
    def config_digest(self) -> str:
        return sha(self.config)

    def documents(self) -> dict[str, bytes]:
        """digest → bytes, as a registry stores them."""
        return {self.digest: self.manifest, self.config_digest: self.config}


def image(hotkey: str | None = None, salt: str = "", **labels: str) -> Image:
    """An image whose config carries `labels` (and the owner label when `hotkey` is given)."""
    if hotkey:
        labels[LABEL_HOTKEY] = hotkey
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Labels": labels},
                         "rootfs": {"type": "layers", "diff_ids": []}, "comment": salt}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST_TYPE,
                           "config": {"mediaType": CONFIG_TYPE, "digest": sha(config), "size": len(config)},
                           "layers": []}).encode()
    return Image(config, manifest)


def index(entries: dict[str, str]) -> bytes:
    """An image index: platform ("linux/amd64") → manifest digest."""
    manifests = [{"mediaType": MANIFEST_TYPE, "digest": digest, "size": 1,
                  "platform": {"os": p.split("/")[0], "architecture": p.split("/")[1]}}
                 for p, digest in entries.items()]
    return json.dumps({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": manifests}).encode()


def serve(documents: dict[str, bytes]):
    """An httpx handler answering `/v2/<repo>/manifests|blobs/<digest>` from `documents` (404 else)."""

    def handle(request: httpx.Request) -> httpx.Response:
        digest = request.url.path.rsplit("/", 1)[-1]
        if ("/manifests/" in request.url.path or "/blobs/" in request.url.path) and digest in documents:
            return httpx.Response(200, content=documents[digest])
        return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})

    return handle
