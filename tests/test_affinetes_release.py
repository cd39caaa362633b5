"""Releasing affinetes' side of an Actor: a failing close is one warning line and the registry entry still goes."""

from __future__ import annotations

import asyncio
import logging

from affinetes.core import get_registry

from subnet.runtime.affinetes_session import release_env


class _Backend:
    _container = object()


class _FailingEnv:
    name = "subnet-test-release-env"

    def __init__(self) -> None:
        self._backend = _Backend()

    async def cleanup(self) -> None:
        raise RuntimeError("connection pool already closed\nsecond line")


def test_a_close_that_fails_is_one_warning_and_the_env_is_unregistered(caplog, monkeypatch):
    unregistered: list[str] = []
    monkeypatch.setattr(get_registry(), "unregister", unregistered.append)
    env = _FailingEnv()
    with caplog.at_level(logging.WARNING, logger="subnet.runtime.affinetes_session"):
        asyncio.run(release_env(env))
    assert env._backend._container is None  # the runtime removes the container itself
    assert unregistered == [env.name]
    (record,) = [r for r in caplog.records if r.name == "subnet.runtime.affinetes_session"]
    assert "connection pool already closed" in record.getMessage() and "\n" not in record.getMessage()
