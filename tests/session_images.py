"""Images this test session builds carry a label with the session's own id, and only those are
removed at its end: other sessions on the same Docker daemon (other engineers, CI jobs) build the
same tags at the same time, and their images are never touched. Never by name, never by pattern.

Every build the package makes reads `SUBNET_BUILD_LABELS` (set for this process and its children
when the suite starts); the few images tests build themselves pass `session_labels()`.
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any

SESSION_LABEL = "io.subnet.test-session"
SESSION_ID = os.environ.get("SUBNET_TEST_SESSION") or f"{os.getpid()}-{uuid.uuid4().hex[:12]}"


def session_labels() -> dict[str, str]:
    return {SESSION_LABEL: SESSION_ID}


def label_this_session() -> None:
    os.environ["SUBNET_TEST_SESSION"] = SESSION_ID
    os.environ["SUBNET_BUILD_LABELS"] = json.dumps(session_labels())


def remove_session_images(client: Any, session: str = SESSION_ID) -> int:
    """Remove every image labelled with `session` (children before parents: Docker prunes a removed
    image's untagged parents itself); returns how many of them are gone."""
    import docker.errors

    selector = {"label": f"{SESSION_LABEL}={session}"}
    found = {image.id for image in client.images.list(all=True, filters=selector)}
    for _ in range(10):  # an image another of ours was built FROM goes once that one is gone
        left = client.images.list(all=True, filters=selector)
        if not left:
            break
        for image in left:
            try:
                client.images.remove(image.id, force=True)  # force: drop every tag it carries
            except docker.errors.APIError:  # already gone, or it still has children (next pass)
                continue
    return len(found - {image.id for image in client.images.list(all=True, filters=selector)})
