"""Keep our own request rate under Basilica's per-client limit, and spend it where it saves money.

A token bucket shared by every thread of one client: `per_minute` requests a minute on average,
at most `burst` at once. The public server's limiter allows 60 requests a minute per client IP, or
per `X-API-Key` header when one is sent (bigailabs/cathedral cb85814f
`crates/basilica-api/src/api/middleware/rate_limit.rs` 170-200; `config/rate_limit.rs`
`default_requests_per_minute`): the defaults, 50 a minute with bursts of 10, never put more than
60 in any minute, whatever the limiter's algorithm.

Who goes first when requests queue: a deployment waiting for its DELETE is paid for every second
it waits, a deployment not yet created costs nothing. So deletes, and the reads that decide one
(a dead deployment's state, the listing a reclaim works from), are URGENT; the round's one listing
per poll cycle, which tells when a paid deployment is ready to work or has failed, is POLL; creates
and everything else are NORMAL. Extra reads that can wait a cycle take a token only when nobody is
queued (`try_acquire`). Within one priority, first come first served.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from typing import Callable

URGENT, POLL, NORMAL = 0, 1, 2


class Pacer:
    def __init__(self, per_minute: float, burst: int = 10, *, clock: Callable[[], float] = time.monotonic,
                 wait: Callable[[threading.Condition, float | None], object] | None = None) -> None:
        """`wait(condition, timeout)` blocks for a token; a test with a fake clock passes one that
        advances the clock instead."""
        self.rate = per_minute / 60.0  # tokens per second; 0 means unpaced
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._clock = clock
        self._stamp = clock()
        self._cond = threading.Condition()
        self._wait = wait or (lambda cond, timeout: cond.wait(timeout))
        self._queue: list[tuple[int, int]] = []  # (priority, ticket), a heap
        self._tickets = itertools.count()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def try_acquire(self) -> bool:
        """Take a token only if one is free now and nobody is queued for one: for work that may
        wait for the next cycle (polling)."""
        if self.rate <= 0:
            return True
        with self._cond:
            self._refill()
            if self._queue or self._tokens < 1:
                return False
            self._tokens -= 1
            return True

    def acquire(self, priority: int = NORMAL) -> float:
        """Wait for a token, behind every queued request of a higher or the same priority; returns
        the seconds waited."""
        if self.rate <= 0:
            return 0.0
        with self._cond:
            started = self._clock()
            me = (priority, next(self._tickets))
            heapq.heappush(self._queue, me)
            try:
                while True:
                    self._refill()
                    if self._queue[0] == me and self._tokens >= 1:
                        self._tokens -= 1
                        return self._clock() - started
                    # the head sleeps until its token is due; the others until the head moves
                    due = (1 - self._tokens) / self.rate if self._queue[0] == me else None
                    self._wait(self._cond, due)
            finally:
                self._queue.remove(me)
                heapq.heapify(self._queue)
                self._cond.notify_all()
