"""In-process stand-in Actors with a fixed latency, for measuring and testing the round engine.

Not a product runtime: nothing is provisioned and no HTTP is spoken. It exists so the engine's
own overhead and its concurrency bounds can be measured apart from any Actor's real work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from typing import Any, AsyncIterator, Mapping, Sequence

from subnet.challenges.base import Claim, Task, Verdict, task_seed
from subnet.protocol import FaultKind, MinerFault, Submission


class EchoChallenge:
    """A challenge whose answer is the task's seed: verification costs next to nothing."""

    name = "echo"
    version = 1
    verify_in_thread = False

    def make_tasks(self, round_seed: bytes, count: int) -> list[Task]:
        return [Task(i, task_seed(round_seed, i), {"seed": task_seed(round_seed, i)}) for i in range(count)]

    def payload(self, task: Task, hotkey: str) -> Mapping[str, Any]:
        return task.payload

    def receive(self, task: Task, hotkey: str, answer: Any) -> Claim:
        if isinstance(answer, dict) and answer.get("seed") == task.seed:
            return Claim(hotkey, Verdict.accept())
        return Claim(hotkey, Verdict.reject(FaultKind.WRONG_ANSWER, "seed not echoed"))

    def verify(self, task: Task, claims: Sequence[Claim]) -> list[Verdict]:
        return [c.verdict for c in claims]


class StandInRuntime:
    """Actors that sleep `latency_s` then echo the seed; records the concurrency it sees."""

    name = "stand-in"

    def __init__(self, latency_s: float = 0.01, hang_for: frozenset[str] = frozenset()) -> None:
        self.latency_s = latency_s
        self.hang_for = hang_for  # submission sources whose calls never answer
        self.in_flight = 0
        self.max_in_flight = 0
        self.per_miner: dict[str, int] = defaultdict(int)
        self.max_per_miner: dict[str, int] = defaultdict(int)
        self.calls = 0
        self.open_now = 0
        self.closed = 0

    @contextlib.asynccontextmanager
    async def open(self, submission: Submission) -> AsyncIterator["_StandInSession"]:
        self.open_now += 1
        try:
            yield _StandInSession(self, submission.source)
        finally:
            self.open_now -= 1
            self.closed += 1


class _StandInSession:
    def __init__(self, runtime: StandInRuntime, source: str) -> None:
        self._rt = runtime
        self._source = source

    async def call(self, method: str, kwargs: Mapping[str, Any], timeout: float) -> Any:
        rt = self._rt
        rt.calls += 1
        rt.in_flight += 1
        rt.per_miner[self._source] += 1
        rt.max_in_flight = max(rt.max_in_flight, rt.in_flight)
        rt.max_per_miner[self._source] = max(rt.max_per_miner[self._source], rt.per_miner[self._source])
        try:
            delay = 3600.0 if self._source in rt.hang_for else rt.latency_s
            try:
                await asyncio.wait_for(asyncio.sleep(delay), timeout)
            except asyncio.TimeoutError:
                raise MinerFault(FaultKind.TIMEOUT, f"no answer within {timeout:g}s") from None
            return {"seed": kwargs["seed"]}
        finally:
            rt.in_flight -= 1
            rt.per_miner[self._source] -= 1


def serve_http(port: int, latency: float) -> None:
    """A stand-in Actor server on loopback (blocks; run it in a child process): every `/call` answers
    after `latency` seconds by echoing the seed. Benchmarks use it to time the real HTTP path."""
    from aiohttp import web

    async def call(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(latency)
        return web.json_response({"status": "success", "result": {"seed": body["kwargs"]["seed"]}})

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.add_routes([web.post("/call", call), web.get("/health", health)])
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, backlog=1024)
