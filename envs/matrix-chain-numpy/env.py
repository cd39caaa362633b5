"""Reference miner env for the `matrix-chain` challenge: numpy, float32, correct, reasonably fast.

Copy this folder to start your own env. The validator calls `Actor.evaluate(task_id=..., seed=...,
n=..., depth=..., timeout=...)` and verifies the returned `row_sums` itself; a faster correct answer
on a cheaper machine earns more. Ideas for a faster env: a GPU (torch/cupy in float32), fusing the
tanh, or drawing the matrices on the device (they must match numpy's PCG64 stream exactly).
"""

import math
import time

import numpy as np


def matrix_chain_row_sums(seed: int, n: int, depth: int) -> np.ndarray:
    # The draw order is part of the task: X first, then W_1..W_depth, all from one PCG64 stream.
    rng = np.random.Generator(np.random.PCG64(seed))
    y = rng.standard_normal((n, n), dtype=np.float32)
    scale = np.float32(1.0 / math.sqrt(n))
    for _ in range(depth):
        w = rng.standard_normal((n, n), dtype=np.float32)
        y = np.tanh((y @ w) * scale)
    return y.sum(axis=1)


class Actor:
    def __init__(self) -> None:
        self.device = "cpu"

    def evaluate(self, task_id: int = 0, seed: int = 0, n: int = 256, depth: int = 4, timeout: float = 30.0, **_):
        started = time.perf_counter()
        row_sums = matrix_chain_row_sums(int(seed), int(n), int(depth))
        return {
            "task_id": task_id,
            "row_sums": row_sums.tolist(),
            # Informational only: the validator measures latency itself and never trusts this.
            "elapsed_ms": (time.perf_counter() - started) * 1000.0,
            "device": self.device,
        }
