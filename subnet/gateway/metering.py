"""The gateway's books: open tasks, reservations, settlement, in-flight calls.

Runs on the gateway's event loop, except the methods marked "any thread". The SQLite work runs ON
that loop, which serialises every budget check with its reservation (two concurrent calls of one
miner cannot both spend the same dollars). Why not a writer thread, as the validator's state does:
the usage file is the gateway's own (nobody else holds its lock, so a write is a ~0.1 ms WAL append
without fsync), while a hop to another thread costs more than that and, under load, waits for the
GIL; measured with scripts/bench_gateway.py. Other threads reach the books through the loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field

from subnet.gateway.budget import Plan, Refusal, plan_call
from subnet.gateway.grants import LlmGrant
from subnet.gateway.metrics import GatewayMetrics
from subnet.gateway.pricing import Price
from subnet.gateway.settings import GatewaySettings
from subnet.gateway.sse import tokens_of
from subnet.gateway.usage import Spend, UsageStore

log = logging.getLogger(__name__)
AFTER_CANCEL_WAIT_S = 2.0  # a cancelled call needs a moment to write its charge


@dataclass(eq=False)
class Call:
    id: int
    grant: LlmGrant
    task_index: int
    model: str
    price: Price
    plan: Plan
    started: float = field(default_factory=time.perf_counter)
    finished: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    worker: asyncio.Task | None = None  # the task talking to the upstream; cancelled to abort
    cut: str | None = None  # why the gateway ended the call early, if it did

    @property
    def key(self) -> tuple[int, int, int]:
        return self.grant.round_id, self.grant.uid, self.task_index

    def abort(self, reason: str) -> None:
        self.cut = self.cut or reason
        if self.worker is not None:
            self.worker.cancel()


class Metering:
    def __init__(self, settings: GatewaySettings, store: UsageStore, metrics: GatewayMetrics,
                 prices: dict[str, Price]) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.prices = prices  # by public model name
        # Runs a coroutine on the gateway's loop from another thread; None while it is not serving.
        self.on_loop = None
        self._lock = threading.Lock()
        self._open: dict[tuple[int, int], int] = {}  # (round, uid) -> the open task
        self.inflight: dict[tuple[int, int, int], set[Call]] = {}
        self._background: set[asyncio.Future] = set()

    def background(self, coro) -> None:
        """Run `coro` in a task of its own, kept referenced until it ends."""
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- tasks (any thread) --
    def begin_task(self, round_id: int, uid: int, task_index: int) -> None:
        with self._lock:
            self._open[(round_id, uid)] = task_index

    def close_task(self, round_id: int, uid: int, task_index: int | None = None) -> None:
        with self._lock:
            if task_index is None or self._open.get((round_id, uid)) == task_index:
                self._open.pop((round_id, uid), None)

    def close_round_tasks(self, round_id: int) -> None:
        with self._lock:
            for key in [k for k in self._open if k[0] == round_id]:
                del self._open[key]

    def open_task(self, grant: LlmGrant) -> int | None:
        with self._lock:
            return self._open.get((grant.round_id, grant.uid))

    def books(self, fn, *args):
        """Any thread but the loop's: `fn(*args)` on the store, on the loop while it serves."""
        if self.on_loop is None:
            return fn(*args)

        async def on_loop():
            return fn(*args)
        return self.on_loop(on_loop())

    def spend(self, round_id: int, uid: int, task_index: int = -1) -> Spend:
        """Any thread but the loop's."""
        return self.books(self.store.spend, round_id, uid, task_index)

    # -- calls (the loop) --
    async def reserve(self, grant: LlmGrant, task_index: int, model: str, prompt_tokens: int,
                      requested: int | None) -> Call | Refusal:
        price = self.prices[model]
        s = self.settings

        def decide(spend: Spend) -> Plan | Refusal:
            return plan_call(requested=requested, clamp=s.llm_max_tokens, prompt_tokens=prompt_tokens,
                             price=price, task_left_usd=s.llm_task_budget_usd - spend.task_usd,
                             round_left_usd=s.llm_round_budget_usd - spend.round_usd)

        call_id, verdict = self.store.reserve(grant.round_id, grant.uid, task_index, model, decide)
        if isinstance(verdict, Refusal):
            return verdict
        call = Call(call_id, grant, task_index, model, price, verdict)
        self.inflight.setdefault(call.key, set()).add(call)
        return call

    async def finish(self, call: Call, usage: dict | None, *, nothing_generated: bool = False) -> float:
        """Settle the call: the upstream's usage, else 0 when the upstream provably generated
        nothing (it refused before answering), else the reservation."""
        tokens = tokens_of(usage)
        usd = 0.0 if nothing_generated else (call.price.usd(*tokens) if tokens else None)
        try:
            charged = self.store.settle(call.id, usd, *(tokens or (None, None)))
        except Exception as exc:  # the row keeps its reservation as the charge
            log.error("LLM call %d: settling failed, its reservation stays charged: %s", call.id, exc)
            charged = call.plan.reserved_usd
        self.metrics.charged(call.grant.uid, call.model, charged, *(tokens or (None, None)))
        self.metrics.upstream_seconds.observe(time.perf_counter() - call.started)
        calls = self.inflight.get(call.key)
        if calls is not None:
            calls.discard(call)
            if not calls:
                del self.inflight[call.key]
        if not call.finished.done():
            call.finished.set_result(charged)
        return charged

    async def drain(self, match, wait_s: float) -> None:
        """Wait up to `wait_s` for the in-flight calls whose key `match`es, then abort the rest and
        wait for their charges to be written."""
        calls = [c for key, group in self.inflight.items() if match(key) for c in group]
        if not calls:
            return
        _, pending = await asyncio.wait([c.finished for c in calls], timeout=wait_s)
        for call in calls:
            if not call.finished.done():
                call.abort("task_ended")
        if pending:
            await asyncio.wait(pending, timeout=AFTER_CANCEL_WAIT_S)
