"""Push a built Actor image and return the digest-pinned reference a miner commits.

The registry's manifest digest (from the push's final status) is what validators pull by; a tag is
never committed. If the push fails, the tag this call added is removed again and nothing else
has changed.
"""

from __future__ import annotations

from typing import Any, Callable

from subnet.protocol.commitment import InvalidCommitment, parse_image_ref
from subnet.miner.build import docker_client
from subnet.runtime.images import LOCAL_REGISTRY, InvalidTag, parse_tag
from subnet.util.text import one_line

Log = Callable[[str], None]


class PushFailed(RuntimeError):
    """The registry did not take the image; the message is one line."""


def resolve_local_image(client: Any, image: str) -> Any:
    """A local image by tag, image id, or `local.invalid/...@sha256:<id>` reference."""
    import docker.errors

    key = image.rsplit("@", 1)[1] if image.startswith(f"{LOCAL_REGISTRY}/") and "@" in image else image
    try:
        return client.images.get(key)
    except docker.errors.ImageNotFound:
        raise PushFailed(f"no local image {image!r} (build it first: subnet miner build)") from None
    except docker.errors.APIError as exc:
        raise PushFailed(f"looking up {image!r}: {one_line(exc.explanation or exc, 300)}") from None


def push_image(image: str, repo: str, client: Any = None, *, tag: str | None = None, log: Log | None = None) -> str:
    """Push local `image` to `repo` (`[registry/]name[:tag]`); return `registry/name@sha256:<digest>`."""
    target = parse_tag(repo)
    if target.registry == LOCAL_REGISTRY:
        raise InvalidTag(f"{repo!r}: {LOCAL_REGISTRY} is not a registry; name a real one")
    push_tag = tag or target.tag or "latest"
    repository = repo.rsplit(":", 1)[0] if target.tag else repo  # as the user wrote it, minus the tag
    client = docker_client(client)
    emit = log or (lambda _line: None)
    local = resolve_local_image(client, image)
    full = f"{repository}:{push_tag}"
    added = full not in (local.tags or [])
    if added:
        local.tag(repository, tag=push_tag)
    try:
        digest = _push(client, repository, push_tag, emit)
    except BaseException:
        if added:
            _untag(client, full)
        raise
    reference = f"{target.registry}/{target.repository}@{digest}"
    try:
        parse_image_ref(reference)
    except InvalidCommitment as exc:
        raise PushFailed(f"pushed, but {reference} cannot be committed: {exc}") from None
    return reference


def _push(client: Any, repository: str, tag: str, emit: Log) -> str:
    digest = None
    try:
        for event in client.api.push(repository, tag=tag, stream=True, decode=True):
            if not isinstance(event, dict):
                continue
            if event.get("error"):
                raise PushFailed(f"push {repository}:{tag} failed: {one_line(event['error'], 300)}")
            if event.get("status") and not event.get("progressDetail"):
                emit(f"{event.get('id', '')} {event['status']}".strip())
            aux = event.get("aux")
            if isinstance(aux, dict) and str(aux.get("Digest", "")).startswith("sha256:"):
                digest = aux["Digest"]
    except PushFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - daemon/registry errors of every kind
        raise PushFailed(f"push {repository}:{tag} failed: {one_line(getattr(exc, 'explanation', None) or exc, 300)}") from None
    if not digest:
        raise PushFailed(f"push {repository}:{tag}: the registry returned no manifest digest")
    return digest


def _untag(client: Any, name: str) -> None:
    try:
        client.images.remove(name, noprune=True)  # removes the tag only; the image stays
    except Exception:  # noqa: BLE001
        pass
