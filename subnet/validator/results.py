"""The validator's writes to its state, made survivable: a round's work is never lost to SQLite.

Each round's results go in one transaction (`Store.finish_round`). When that write fails (the
file is locked past the retries, the disk is full, a page is damaged) the results stay in memory
and are written first thing next round, in round order; the smoothed scores likewise: until they
are stored, the in-memory ones are the base for the next round's smoothing, so no update is lost.
Every failure is one log line naming the file (`subnet.state.db`).

The round service calls these from worker threads (a locked file must not hold the event loop, and
with it signal handling); one lock keeps a stop's last flush from interleaving with a write still
waiting in its thread.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from subnet.state.db import StateError, retrying
from subnet.state.store import Store, TaskRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Unwritten:
    round_id: int
    records: Sequence[TaskRecord]


class ResultWriter:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._rounds: list[_Unwritten] = []
        self._evaluations: list[tuple[str, int, list[str]]] = []  # (challenge key, round, digests) not yet stored
        self._records: list[Callable[[], None]] = []  # weights sent, round summaries: written in order
        self._smoothed: dict[str, float] | None = None  # not yet stored
        self._smoothed_round = 0
        self._lock = threading.RLock()

    @property
    def unwritten_rounds(self) -> list[int]:
        return [r.round_id for r in self._rounds]

    def begin_round(self, mode: str, challenge: str, block: int) -> int:
        """Write what earlier rounds left in memory, then open a round. Raises `StateError`
        (nothing has been done yet for this round, so nothing is lost)."""
        with self._lock:
            self.flush()
            return retrying(self.store.path, lambda: self.store.begin_round(mode, challenge, block))

    def finish_round(self, round_id: int, records: Sequence[TaskRecord]) -> None:
        with self._lock:
            self._rounds.append(_Unwritten(round_id, list(records)))
            self.flush()

    def record_evaluations(self, challenge: str, round_id: int, digests: Sequence[str]) -> None:
        """Which digests this round measured (the evaluation cache); written after the round's results."""
        with self._lock:
            self._evaluations.append((challenge, round_id, list(digests)))
            self.flush()

    def record(self, write: Callable[[], None]) -> None:
        """Any other write of the round (weights sent, its summary): kept and retried like results."""
        with self._lock:
            self._records.append(write)
            self.flush()

    def smoothed_scores(self) -> dict[str, float]:
        with self._lock:
            if self._smoothed is not None:
                return dict(self._smoothed)
            return retrying(self.store.path, self.store.smoothed_scores)

    def save_smoothed_scores(self, scores: Mapping[str, float], round_id: int) -> None:
        with self._lock:
            self._smoothed, self._smoothed_round = dict(scores), round_id
            self.flush()

    def flush(self) -> bool:
        """Write everything kept in memory, oldest first; True when nothing is left unwritten."""
        with self._lock:
            try:
                while self._rounds:
                    head = self._rounds[0]
                    retrying(self.store.path, lambda: self.store.finish_round(head.round_id, head.records))
                    self._rounds.pop(0)
                while self._evaluations:
                    key, round_id, digests = self._evaluations[0]
                    retrying(self.store.path, lambda: self.store.record_evaluations(key, round_id, digests))
                    self._evaluations.pop(0)
                while self._records:
                    retrying(self.store.path, self._records[0])
                    self._records.pop(0)
                if self._smoothed is not None:
                    scores, round_id = self._smoothed, self._smoothed_round
                    retrying(self.store.path, lambda: self.store.save_smoothed_scores(scores, round_id))
                    self._smoothed = None
            except StateError as exc:
                log.warning("%s; kept in memory: results of round(s) %s%s, retried next round", exc,
                            ", ".join(map(str, self.unwritten_rounds)) or "none",
                            " and the smoothed scores" if self._smoothed is not None else "")
                return False
            return True
