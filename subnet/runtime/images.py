"""Image references for Docker mode, including the convention for images that were never pushed.

Registry images are committed as `registry/repository[:tag]@sha256:<manifest digest>` (the
commitment grammar of `subnet.protocol.commitment`). A locally built image that was never pushed has no
manifest digest, only its local content digest (the image id, `sha256:` of its config). Dry runs
reference such images as

    local.invalid/<repository>[:<tag>]@sha256:<image id hex>

`.invalid` is a reserved top-level domain (RFC 2606) that never resolves, so such a reference can
never be pulled from, or mistaken for, a real registry; it parses with `parse_image_ref` as is.
The Docker runtime resolves it from the local image store by image id, and only when it was
built with `allow_local=True` (dry runs): on chain a local reference could name any image the
validator happens to hold, so validators must never accept one.
"""

from __future__ import annotations

from typing import Any

from subnet.protocol.commitment import InvalidCommitment, ImageRef, parse_image_ref
from subnet.util.text import one_line

LOCAL_REGISTRY = "local.invalid"
_ZERO_DIGEST = "sha256:" + "0" * 64


class InvalidTag(ValueError):
    """Not a Docker image name `[registry/]repository[:tag]`; the message says why in one line."""


class PullFailed(Exception):
    """The image is not in the local store and could not be pulled (never a miner's fault)."""


def parse_tag(tag: str) -> ImageRef:
    """Parse `[registry/]repository[:tag]` with the commitment grammar (the digest is a dummy)."""
    if "@" in tag:
        raise InvalidTag(f"{tag!r}: give a name[:tag], not a digest")
    try:
        return parse_image_ref(f"{tag}{'@'}{_ZERO_DIGEST}")
    except InvalidCommitment as exc:
        why = f": {exc}" if "forbidden" in str(exc) or "bytes" in str(exc) else ""
        raise InvalidTag(f"{tag!r} is not a valid image name ([registry/]name[:tag], lowercase name){why}") from None


def local_reference(tag: str, image_id: str) -> str:
    """The digest-pinned local reference of a built image: `local.invalid/<repo>[:<tag>]@<image id>`."""
    name = parse_tag(tag)
    suffix = f":{name.tag}" if name.tag else ""
    reference = f"{LOCAL_REGISTRY}/{name.repository}{suffix}@{image_id}"
    try:
        parse_image_ref(reference)
    except InvalidCommitment as exc:
        raise InvalidTag(f"{tag!r} makes an invalid local reference: {exc}") from None
    return reference


def is_local(ref: ImageRef) -> bool:
    return ref.registry == LOCAL_REGISTRY


def find_local(client: Any, ref: ImageRef) -> Any | None:
    """The image `ref` names, if it is in the local store (by image id for local references)."""
    import docker.errors

    key = ref.digest if is_local(ref) else ref.pinned
    try:
        image = client.images.get(key)
    except docker.errors.ImageNotFound:
        return None
    if is_local(ref) and image.id != ref.digest:  # a short-id prefix match is not the same image
        return None
    return image


def pull(client: Any, ref: ImageRef, stall_s: float = 60.0, total_s: float = 900.0, report=None) -> Any:
    """Pull `ref` by digest under deadlines (`subnet.runtime.image_pull`); raises `PullFailed`
    with one line on any failure: a stall, the total cap, or an error from the daemon or registry."""
    import docker.errors

    from subnet.runtime.image_pull import PullRefused, PullTimedOut, stream_pull

    repository = f"{ref.registry}/{ref.repository}"
    try:
        stream_pull(client, repository, ref.digest, stall_s, total_s, report)
        return client.images.get(ref.pinned)
    except (PullTimedOut, PullRefused) as exc:
        raise PullFailed(f"pull {ref.pinned}: {one_line(str(exc))}") from None
    except docker.errors.ImageNotFound:
        raise PullFailed(f"pull {ref.pinned}: the registry sent nothing") from None
    except Exception as exc:  # noqa: BLE001 - registry/daemon errors of every kind are infra
        raise PullFailed(f"pull {ref.pinned}: {one_line(getattr(exc, 'explanation', None) or exc)}") from None
