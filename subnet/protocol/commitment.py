"""Strict parsing of image references committed on chain.

A commitment is an untrusted string from a stranger that will end up in Docker and Basilica
calls. Only one shape is accepted: `[registry/]repository[:tag]@sha256:<64 hex>`, ASCII, at most
128 bytes, matched by a whole-string grammar (the OCI distribution reference grammar, narrowed).
Anything else raises `InvalidCommitment` with a one-line reason; nothing is "cleaned up".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_COMMITMENT_BYTES = 128
DEFAULT_REGISTRY = "docker.io"

_HOST = r"(?:localhost|[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+)(?::[0-9]{1,5})?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    rf"^(?:(?P<registry>{_HOST})/)?"
    rf"(?P<repository>{_COMPONENT}(?:/{_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"@(?P<digest>sha256:[0-9a-f]{64})$"
)
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class InvalidCommitment(ValueError):
    """The commitment is not a digest-pinned image reference; the message says why in one line."""


@dataclass(frozen=True)
class ImageRef:
    registry: str
    repository: str
    digest: str
    tag: str | None = None

    @property
    def pinned(self) -> str:
        """The reference to pull: registry/repository@digest (the tag is informational only)."""
        return f"{self.registry}/{self.repository}@{self.digest}"

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        return f"{self.registry}/{self.repository}{tag}@{self.digest}"


def parse_image_ref(raw: str | bytes) -> ImageRef:
    """Parse a commitment into an `ImageRef`, or raise `InvalidCommitment` saying what is wrong."""
    text = _as_ascii(raw)
    if len(text) > MAX_COMMITMENT_BYTES:
        raise InvalidCommitment(f"{len(text)} bytes; at most {MAX_COMMITMENT_BYTES} fit a commitment")
    if not text:
        raise InvalidCommitment("empty")
    bad = sorted({c for c in text if not (c.isalnum() or c in "._-/:@")})
    if bad:
        raise InvalidCommitment(f"forbidden characters {''.join(bad)!r} (whitespace, quotes or shell metacharacters)")
    if "@" not in text:
        raise InvalidCommitment("no digest: a tag is mutable, commit name@sha256:<64 hex>")
    digest = text.rsplit("@", 1)[1]
    if not _DIGEST.match(digest):
        raise InvalidCommitment(f"digest {digest[:80]!r} is not sha256:<64 lowercase hex>")
    match = _REFERENCE.match(text)
    if not match:
        raise InvalidCommitment("not of the form [registry/]repository[:tag]@sha256:<64 hex> (lowercase repository)")
    return ImageRef(
        registry=match.group("registry") or DEFAULT_REGISTRY,
        repository=match.group("repository"),
        digest=match.group("digest"),
        tag=match.group("tag"),
    )


def _as_ascii(raw: str | bytes) -> str:
    if isinstance(raw, bytes):
        if len(raw) > MAX_COMMITMENT_BYTES:
            raise InvalidCommitment(f"{len(raw)} bytes; at most {MAX_COMMITMENT_BYTES} fit a commitment")
        try:
            return raw.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidCommitment("not ASCII") from None
    if not raw.isascii():
        raise InvalidCommitment("not ASCII")
    return raw
