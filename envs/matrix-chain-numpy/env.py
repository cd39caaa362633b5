"""Reference miner env for `matrix-chain/2`: numpy, float32, correct, CPU only.

Copy this folder to start your own env; the whole task is specified in docs/challenge.md. The
validator calls `Actor.evaluate(task_id=..., version="matrix-chain/2", task_key=<hex>,
miner_key=<hex>, n=..., depth=..., timeout=...)` and verifies the returned `row_sums` itself; a
faster correct answer on a cheaper machine earns more (envs/matrix-chain-torch runs on a GPU).
"""

import hashlib
import math
import time

import numpy as np

VERSION = "matrix-chain/2"
GAIN = 1.5
MUL1, MUL2 = np.uint32(0x21F0AAAD), np.uint32(0x735A2D97)


def stream_key(key: bytes, label: str) -> tuple[np.uint32, np.uint32]:
    digest = hashlib.sha256(key + label.encode("ascii")).digest()
    return np.uint32(int.from_bytes(digest[0:4], "big")), np.uint32(int.from_bytes(digest[4:8], "big"))


def mix32(x: np.ndarray) -> None:
    # uint32 multiplies wrap mod 2^32: the same values as the spec's masked int64 arithmetic.
    x ^= x >> np.uint32(16)
    x *= MUL1
    x ^= x >> np.uint32(15)
    x *= MUL2
    x ^= x >> np.uint32(15)


def matrix(key: bytes, label: str, n: int, chunk_rows: int = 16) -> np.ndarray:
    """The n×n float32 matrix `label` of stream `key`, built a few rows at a time (cache-sized)."""
    k0, k1 = stream_key(key, label)
    out = np.empty((n, n), dtype=np.float32)
    cols = np.arange(n, dtype=np.uint32)
    for r0 in range(0, n, chunk_rows):
        rows = np.arange(r0, min(r0 + chunk_rows, n), dtype=np.uint32)
        h = rows[:, None] * np.uint32(n) + cols[None, :]
        h ^= k0
        mix32(h)
        h ^= k1
        mix32(h)
        h >>= np.uint32(8)
        out[r0 : r0 + len(rows)] = (h.view(np.int32) - np.int32(1 << 23)) * np.float32(2.0**-23)
    return out


def matrix_chain_row_sums(task_key: bytes, miner_key: bytes, n: int, depth: int) -> np.ndarray:
    scale = np.float32(GAIN * math.sqrt(3.0 / n))
    y = matrix(miner_key, "X", n)
    for layer in range(1, depth + 1):
        y = np.tanh((y @ matrix(task_key, f"W{layer}", n)) * scale)
    return y.sum(axis=1)


class Actor:
    def __init__(self) -> None:
        self.device = "cpu"

    def evaluate(self, task_id=0, version=VERSION, task_key="", miner_key="", n=256, depth=4, timeout=30.0, **_):
        if version != VERSION:
            raise ValueError(f"this env computes {VERSION}, not {version!r}")
        started = time.perf_counter()
        row_sums = matrix_chain_row_sums(bytes.fromhex(task_key), bytes.fromhex(miner_key), int(n), int(depth))
        return {
            "task_id": task_id,
            "row_sums": row_sums.tolist(),
            # Informational only: the validator measures latency itself and never trusts this.
            "elapsed_ms": (time.perf_counter() - started) * 1000.0,
            "device": self.device,
        }
