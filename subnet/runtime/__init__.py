"""Runtimes provision a miner's Actor for one round and hand back a session to call it."""

from subnet.runtime.base import ActorSession, Runtime

__all__ = ["ActorSession", "Runtime"]
