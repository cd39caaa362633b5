"""Calls to a Basilica deployment that may die under them (evicted, preempted, spot-reclaimed).

A call that fails the way a dead pod fails (connection lost, no answer, the gateway's 502/503/504)
asks Basilica what became of the deployment before anyone is blamed: still serving → the fault is
the Actor's own; its container crashed → the miner's (`unreachable`); stopped from outside →
infrastructure, for this call and, without another try, for every task after it.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable, Mapping

from subnet.protocol import FaultKind, InfraFault, MinerFault

Check = Callable[[], Awaitable[Exception | None]]  # None: the deployment still serves
_GATEWAY = ("HTTP 502", "HTTP 503", "HTTP 504")


def may_be_dead(fault: MinerFault) -> bool:
    """A failure a vanished pod causes too (the Actor's own error answers are not asked about)."""
    if fault.kind in (FaultKind.UNREACHABLE, FaultKind.TIMEOUT):
        return True
    return fault.kind is FaultKind.ERROR and fault.detail.startswith(_GATEWAY)


class DeploymentSession:
    """An `ActorSession` over a deployment's AffinetesSession, with a check on its deployment."""

    def __init__(self, inner: Any, check: Check) -> None:
        self._inner = inner
        self._check = check
        self._dead: InfraFault | None = None
        self._checking: asyncio.Task | None = None
        self.gpu_type = getattr(inner, "gpu_type", None)
        self.hourly_price = getattr(inner, "hourly_price", None)

    async def call(self, method: str, kwargs: Mapping[str, Any], timeout: float) -> Any:
        if self._dead is not None:
            raise self._dead
        try:
            return await self._inner.call(method, kwargs, timeout)
        except MinerFault as fault:
            if not may_be_dead(fault):
                raise
            verdict = await self._shared_check()
            if verdict is None:
                raise
        if isinstance(verdict, InfraFault):
            self._dead = verdict
        raise verdict

    async def _shared_check(self) -> Exception | None:
        """Calls failing together share one look at the deployment."""
        if self._checking is None or self._checking.done():
            self._checking = asyncio.ensure_future(self._check())
        return await asyncio.shield(self._checking)

    async def close(self) -> None:
        await self._inner.close()
