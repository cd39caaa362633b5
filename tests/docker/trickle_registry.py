"""A hostile registry on loopback: just enough of the registry v2 API for `docker pull` to start
(the manifest and the config come at once), then the one layer trickles a byte at a time.

Docker's daemon allows plain-HTTP registries on 127.0.0.0/8 by default, so the daemon on this
host pulls from it. The server records what was asked and whether the daemon hung up.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import tarfile
import threading
import time

from loopback_http import LoopbackServer, QuietHandler

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
REPOSITORY = "trickle/env"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _layer() -> tuple[bytes, bytes]:
    """(gzipped tar, uncompressed tar) holding 1 MiB of incompressible bytes."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        payload = os.urandom(1 << 20)
        info = tarfile.TarInfo("payload.bin")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    return gzip.compress(raw.getvalue()), raw.getvalue()


class TrickleRegistry(LoopbackServer):
    def __init__(self, byte_every_s: float = 0.5, chunk: int = 1) -> None:
        self.byte_every_s = byte_every_s
        self.chunk = chunk  # bytes per trickle step
        self.layer, tar = _layer()
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        self.config = json.dumps({"architecture": arch, "os": "linux", "config": {},
                                  "rootfs": {"type": "layers", "diff_ids": [_digest(tar)]}}).encode()
        self.manifest = json.dumps({
            "schemaVersion": 2, "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                       "size": len(self.config), "digest": _digest(self.config)},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(self.layer), "digest": _digest(self.layer)}],
        }).encode()
        self.requests: list[str] = []
        self.layer_bytes_sent = 0
        self.hung_up = threading.Event()  # the daemon closed the layer download
        super().__init__(self._handler())

    @property
    def reference(self) -> str:
        return f"{self.host}/{REPOSITORY}@{_digest(self.manifest)}"

    def _handler(self) -> type[QuietHandler]:
        registry = self

        class Handler(QuietHandler):
            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                registry.requests.append(f"{self.command} {self.path}")
                if self.path == "/v2/":
                    return self._send(b"{}", "application/json", body)
                if self.path.startswith(f"/v2/{REPOSITORY}/manifests/"):
                    return self._send(registry.manifest, MANIFEST_TYPE, body, _digest(registry.manifest))
                if self.path == f"/v2/{REPOSITORY}/blobs/{_digest(registry.config)}":
                    return self._send(registry.config, "application/octet-stream", body)
                if self.path == f"/v2/{REPOSITORY}/blobs/{_digest(registry.layer)}":
                    return self._trickle(body)
                self._send(b'{"errors":[{"code":"NAME_UNKNOWN"}]}', "application/json", body, status=404)

            def _send(self, data: bytes, kind: str, body: bool, digest: str = "", status: int = 200) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Docker-Distribution-API-Version", "registry/2.0")
                if digest:
                    self.send_header("Docker-Content-Digest", digest)
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _trickle(self, body: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(registry.layer)))
                self.end_headers()
                if not body:
                    return
                try:
                    for i in range(0, len(registry.layer), registry.chunk):
                        if registry._stop.is_set():
                            return
                        self.wfile.write(registry.layer[i:i + registry.chunk])
                        self.wfile.flush()
                        registry.layer_bytes_sent += registry.chunk
                        time.sleep(registry.byte_every_s)
                except OSError:  # the daemon hung up: the pull was abandoned
                    registry.hung_up.set()

        return Handler
