"""Keep our own request rate under Basilica's per-client limit, instead of finding it with 429s.

A token bucket shared by every thread of one client: `per_minute` requests a minute on average,
at most `burst` at once. The public server's limiter allows 60 requests a minute per client
(`crates/basilica-api/src/config/rate_limit.rs`, `default_requests_per_minute`): the defaults, 50 a
minute with bursts of 10, never put more than 60 in any minute, whatever the limiter's algorithm.
"""

from __future__ import annotations

import threading
import time
from typing import Callable


class Pacer:
    def __init__(self, per_minute: float, burst: int = 10, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = per_minute / 60.0  # tokens per second; 0 means unpaced
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._clock, self._sleep = clock, sleep
        self._stamp = clock()
        self._lock = threading.Lock()

    def try_acquire(self) -> bool:
        """Take a token only if one is free now: for work that may wait for the next cycle (polling),
        so it never queues in front of creates and deletes."""
        if self.rate <= 0:
            return True
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens < 1:
                return False
            self._tokens -= 1
            return True

    def acquire(self) -> float:
        """Wait for a token; returns the seconds waited."""
        if self.rate <= 0:
            return 0.0
        with self._lock:  # reserve in order: later callers queue behind earlier ones
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1
            wait = 0.0 if self._tokens >= 0 else -self._tokens / self.rate
        if wait:
            self._sleep(wait)
        return wait
