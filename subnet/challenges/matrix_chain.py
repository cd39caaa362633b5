"""`matrix-chain` v1: a verifiable compute task that rewards fast, correct float32 work.

Task: with rng = PCG64(seed), draw X then W_1..W_depth (n×n, float32 standard normal, in that
order); Y_0 = X, Y_i = tanh(Y_{i-1} @ W_i / sqrt(n)); the answer is {"row_sums": Y_depth.sum(1)}.

Verification samples k rows after the answer arrives and recomputes just those rows in float64,
which costs k·n²·depth instead of n³·depth. Measured on this project's reference machine, honest
float32 (BLAS or GPU) differs from float64 by about 1e-6·√n per row sum, TF32/fp16 by about 1e-2,
and a skipped layer by O(1); the tolerance 1e-4·√n sits two orders above honest float32 and one
below reduced precision. The matrices depend only on the task, so they are cached across miners.
"""

from __future__ import annotations

import math
import secrets
import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from subnet.challenges.base import Task, Verdict, task_seed
from subnet.protocol import FaultKind

SAMPLED_ROWS = 16
ABS_TOLERANCE_PER_SQRT_N = 1e-4
REL_TOLERANCE = 1e-5
CACHE_BYTES = 256 << 20


def draw_matrices(seed: int, n: int, depth: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """X and W_1..W_depth exactly as the task defines them (also what a miner must draw)."""
    rng = np.random.Generator(np.random.PCG64(seed))
    x = rng.standard_normal((n, n), dtype=np.float32)
    weights = [rng.standard_normal((n, n), dtype=np.float32) for _ in range(depth)]
    return x, weights


def reference_rows(x: np.ndarray, weights: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Row sums of Y_depth for the given rows, computed in float64."""
    scale = 1.0 / math.sqrt(x.shape[0])
    y = x[rows].astype(np.float64)
    for w in weights:
        y = np.tanh((y @ w.astype(np.float64, copy=False)) * scale)
    return y.sum(axis=1)


def tolerance(n: int, expected: np.ndarray) -> np.ndarray:
    return ABS_TOLERANCE_PER_SQRT_N * math.sqrt(n) + REL_TOLERANCE * np.abs(expected)


class _MatrixCache:
    """Per-task matrices shared by every miner's verification, bounded in bytes."""

    def __init__(self, budget: int = CACHE_BYTES) -> None:
        self._budget = budget
        self._items: OrderedDict[tuple[int, int, int], tuple[np.ndarray, list[np.ndarray]]] = OrderedDict()
        self._locks: dict[tuple[int, int, int], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, seed: int, n: int, depth: int) -> tuple[np.ndarray, list[np.ndarray]]:
        key = (seed, n, depth)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one thread draws a task's matrices; the others wait and reuse them
            with self._guard:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key]
            x, weights = draw_matrices(seed, n, depth)
            # Kept in float64 so each verification multiplies without converting n² values.
            value = (x, [w.astype(np.float64) for w in weights])
            with self._guard:
                self._items[key] = value
                self._evict(per_item=(2 * depth + 1) * n * n * 4)
            return value

    def _evict(self, per_item: int) -> None:
        while len(self._items) > 1 and len(self._items) * per_item > self._budget:
            old, _ = self._items.popitem(last=False)
            self._locks.pop(old, None)


class MatrixChain:
    name = "matrix-chain"
    version = 1
    verify_in_thread = True

    def __init__(self, n: int = 256, depth: int = 4, sampled_rows: int = SAMPLED_ROWS) -> None:
        if n < 2 or depth < 1:
            raise ValueError("matrix-chain needs n >= 2 and depth >= 1")
        self.n = n
        self.depth = depth
        self.sampled_rows = min(sampled_rows, n)
        self._cache = _MatrixCache()

    def make_tasks(self, round_seed: bytes, count: int) -> list[Task]:
        tasks = []
        for index in range(count):
            seed = task_seed(round_seed, index)
            tasks.append(Task(index, seed, {"seed": seed, "n": self.n, "depth": self.depth}))
        return tasks

    def verify(self, task: Task, answer: Any) -> Verdict:
        n = int(task.payload["n"])
        sums, problem = _parse_answer(answer, n)
        if problem:
            return Verdict.reject(FaultKind.BAD_OUTPUT, problem)
        if not np.all(np.isfinite(sums)):
            return Verdict.reject(FaultKind.WRONG_ANSWER, "row_sums contains NaN or infinity")
        if np.any(sums == 0.0):
            # An honest row sum of n tanh values is never exactly zero; zeros mark skipped rows.
            return Verdict.reject(FaultKind.WRONG_ANSWER, f"{int(np.sum(sums == 0.0))} row sums are exactly 0 (partial work)")
        rows = np.array(sorted(secrets.SystemRandom().sample(range(n), self.sampled_rows)))
        x, weights = self._cache.get(task.seed, n, int(task.payload["depth"]))
        expected = reference_rows(x, weights, rows)
        error = np.abs(sums[rows] - expected)
        bad = error > tolerance(n, expected)
        if np.any(bad):
            return Verdict.reject(
                FaultKind.WRONG_ANSWER,
                f"{int(bad.sum())}/{len(rows)} sampled rows off (worst error {float(error.max()):.3g})",
            )
        return Verdict.accept()


def _parse_answer(answer: Any, n: int) -> tuple[np.ndarray, str]:
    """The answer as a float64 vector, or an empty array and the reason it is not one."""
    empty = np.empty(0)
    if not isinstance(answer, dict):
        return empty, f"answer is a {type(answer).__name__}, not a JSON object"
    if "row_sums" not in answer:
        keys = ", ".join(sorted(map(str, answer))[:5]) or "none"
        return empty, f"no 'row_sums' in the answer (keys: {keys}); self-reported scores are ignored"
    values = answer["row_sums"]
    if not isinstance(values, list) or len(values) != n:
        size = len(values) if isinstance(values, list) else type(values).__name__
        return empty, f"row_sums must be a list of {n} numbers, got {size}"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return empty, "row_sums holds non-numbers"
    return np.asarray(values, dtype=np.float64), ""
