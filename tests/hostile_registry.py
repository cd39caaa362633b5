"""A registry on loopback that misbehaves in every way a miner's registry can, one repository each.

It speaks the paths of the OCI distribution API that a validator reads (`GET /v2/<repo>/manifests/
<digest>`, `GET /v2/<repo>/blobs/<digest>`, the Bearer challenge of the token flow: distribution
spec, "Pulling manifests" / "Pulling blobs"; docker/distribution docs/spec/auth/token.md), and
breaks one rule per repository:

    honest/env      a correct image, labelled for the honest miner
    nested/env      a manifest 100 000 levels deep — whose digest is the one committed
    slow/env        a correct manifest, one byte every `byte_every_s` seconds
    endless/env     a chunked manifest that never ends
    huge/env        a manifest of 100 MB (Content-Length says so)
    wrong/env       a manifest that does not hash to the committed digest
    thief/env       the honest manifest, then a config relabelled for the thief
    mirror/env      the honest image, byte for byte (a copy, not a forgery)
    index/env       an index whose linux/amd64 entry is served with other bytes
    redirect/env    a redirect to the cloud metadata address
    realm/env       a 401 whose token realm is `http://127.0.0.1.example.com/...` (not loopback)
    hang-token/env  a 401 whose token endpoint (on this registry) never answers

`reference(repo)` is what the miner of that repository commits.
"""

from __future__ import annotations

import threading

from loopback_http import LoopbackServer, QuietHandler
from registry_images import image, index, sha

HONEST, THIEF, SLOW = "5Honest", "5Thief", "5Slow"
HUGE_BYTES = 100 * 1000 * 1000
_CHUNK = b" " * (64 << 10)


class HostileRegistry(LoopbackServer):
    def __init__(self, byte_every_s: float = 1.0) -> None:
        self.byte_every_s = byte_every_s
        self.honest = image(HONEST)
        self.slow = image(SLOW)
        forged = image(THIEF)
        child, other = image("child", salt="child"), image("other", salt="other")
        self.nested = b"[" * 100_000 + b"]" * 100_000
        self.index = index({"linux/amd64": child.digest})
        # digest each miner commits, and the documents its repository serves (digest → bytes)
        self.digests = {
            "honest/env": self.honest.digest, "slow/env": self.slow.digest, "mirror/env": self.honest.digest,
            "thief/env": self.honest.digest, "nested/env": sha(self.nested), "wrong/env": sha(b"not this"),
            "endless/env": sha(b"endless"), "huge/env": sha(b"huge"), "index/env": sha(self.index),
            "redirect/env": sha(b"redirect"), "realm/env": sha(b"realm"), "hang-token/env": sha(b"token"),
        }
        self.documents = {
            "honest/env": self.honest.documents(), "slow/env": self.slow.documents(),
            "mirror/env": self.honest.documents(),
            "thief/env": {self.honest.digest: self.honest.manifest, self.honest.config_digest: forged.config},
            "nested/env": {sha(self.nested): self.nested},
            "wrong/env": {sha(b"not this"): self.honest.manifest},
            "index/env": {sha(self.index): self.index, child.digest: other.manifest},
        }
        self.requests: list[str] = []
        super().__init__(self._handler())

    def reference(self, repo: str) -> str:
        return f"{self.host}/{repo}@{self.digests[repo]}"

    def asked(self, repo: str) -> int:
        return sum(1 for r in self.requests if f"/v2/{repo}/" in r)

    def _handler(self) -> type[QuietHandler]:
        registry = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                registry.requests.append(self.path)
                try:
                    self._route()
                except OSError:  # the validator hung up: what a bounded reader does
                    pass

            def _route(self) -> None:
                if self.path.startswith("/token"):
                    return self._hang()
                parts = self.path.split("/")  # "", "v2", name, "env", kind, digest
                repo = "/".join(parts[2:4]) if len(parts) >= 6 else ""
                if repo == "slow/env":
                    return self._trickle(registry.slow.manifest)
                if repo == "endless/env":
                    return self._endless()
                if repo == "huge/env":
                    return self._huge()
                if repo == "redirect/env":
                    return self._send(307, b"", {"Location": f"http://169.254.169.254{self.path}"})
                if repo == "realm/env":
                    return self._challenge("http://127.0.0.1.example.com/token")
                if repo == "hang-token/env":
                    return self._challenge(f"http://{registry.host}/token")
                body = registry.documents.get(repo, {}).get(parts[-1])
                if body is None:
                    return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
                self._send(200, body)

            def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _challenge(self, realm: str) -> None:
                self._send(401, b"", {"WWW-Authenticate": f'Bearer realm="{realm}",service="hostile"'})

            def _trickle(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                for i in range(len(body)):
                    if registry._stop.wait(registry.byte_every_s):
                        return
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()

            def _endless(self) -> None:
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                frame = b"%x\r\n" % len(_CHUNK) + _CHUNK + b"\r\n"
                while not registry._stop.is_set():
                    self.wfile.write(frame)

            def _huge(self) -> None:
                self.send_response(200)
                self.send_header("Content-Length", str(HUGE_BYTES))
                self.end_headers()
                for _ in range(HUGE_BYTES // len(_CHUNK)):
                    if registry._stop.is_set():
                        return
                    self.wfile.write(_CHUNK)

            def _hang(self) -> None:
                registry._stop.wait()  # accepted, then nothing at all

        return Handler


class RssSampler:
    """The process's resident memory sampled every 10 ms on a thread (`growth`: peak − start, bytes)."""

    def __init__(self) -> None:
        self.start = self.peak = _rss()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.wait(0.01):
            self.peak = max(self.peak, _rss())

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def growth(self) -> int:
        return self.peak - self.start


def _rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0

