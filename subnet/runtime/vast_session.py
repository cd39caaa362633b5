"""Calls to an Actor on a Vast.ai instance: the instance's bearer token on every request.

The Actor's port is public on the host's IP, so its server checks a per-instance token
(`subnet.protocol.actor_auth`). affinetes' HTTP executor sends every request through one
`httpx.AsyncClient` with no per-request headers (affinetes 0.2.0
`affinetes/infrastructure/http_executor.py`: `self.client.post(...)`, `self.client.get(...)`), so a
header set on that client rides on every call, /health and /methods included.
"""

from __future__ import annotations

from typing import Any

from subnet.protocol.actor_auth import bearer_header


def authorized(session: Any, token: str) -> Any:
    """`session` (an AffinetesSession) with `Authorization: Bearer <token>` on every request."""
    session._env._backend._http_executor.client.headers.update(bearer_header(token))
    return session
