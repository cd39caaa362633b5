"""The matrix-chain v2 input generator: a counter-based integer hash, identical in numpy and torch.

Element (i, j) of an n×n matrix with a 64-bit stream key (k0, k1) is

    c = i·n + j                       (< 2^28 for n ≤ 16384)
    h = mix32(mix32(c XOR k0) XOR k1)
    value = ((h >> 8) − 2^23) · 2^−23  (a 24-bit uniform in [−1, 1): exact in float32)

`mix32` is a 32-bit xorshift-multiply finaliser whose multipliers are below 2^31, so every product
of a 32-bit value and a multiplier is below 2^63: the whole hash runs in int64 with masks, with no
overflow in numpy or torch (torch has no unsigned 64-bit ops on every device). The core functions
use only operators, so the same code runs on numpy arrays and torch tensors (CPU or CUDA).
`docs/challenge.md` is the normative text; its test vectors are checked by the tests.
"""

from __future__ import annotations

import hashlib

import numpy as np

MASK32 = 0xFFFFFFFF
MUL1 = 0x21F0AAAD  # both < 2^31: x·MUL < 2^32·2^31 = 2^63
MUL2 = 0x735A2D97
MAX_N = 16384  # keeps the counter i·n + j below 2^28 (it must stay below 2^32)


def stream_key(key: bytes, label: str) -> tuple[int, int]:
    """(k0, k1): the first 8 bytes of sha256(key ‖ label), as two big-endian 32-bit words."""
    digest = hashlib.sha256(key + label.encode("ascii")).digest()
    return int.from_bytes(digest[0:4], "big"), int.from_bytes(digest[4:8], "big")


def mix32(x):
    """32-bit finaliser on int64 values in [0, 2^32); in place where the array allows it."""
    x ^= x >> 16
    x *= MUL1
    x &= MASK32
    x ^= x >> 15
    x *= MUL2
    x &= MASK32
    x ^= x >> 15
    return x


def hash_counters(counters, k0: int, k1: int):
    """The 32-bit hash of int64 counters (a fresh array: `counters` is left as it was)."""
    x = counters ^ k0
    x = mix32(x)
    x ^= k1
    return mix32(x)


def numpy_rows(key: bytes, label: str, n: int, rows: np.ndarray | slice) -> np.ndarray:
    """Rows of the matrix `label` of stream `key`, float32 (exact values)."""
    k0, k1 = stream_key(key, label)
    index = np.arange(n, dtype=np.int64)[rows] if isinstance(rows, slice) else np.asarray(rows, dtype=np.int64)
    counters = index[:, None] * n + np.arange(n, dtype=np.int64)[None, :]
    h = hash_counters(counters, k0, k1)
    h >>= 8
    h -= 1 << 23
    return h.astype(np.float32) * np.float32(2.0**-23)


def numpy_matrix(key: bytes, label: str, n: int) -> np.ndarray:
    return numpy_rows(key, label, n, slice(0, n))



# --- The validator's fast path: the same hash in native uint32 (wrap-around multiply is the same
# value mod 2^32), computed in cache-sized chunks. Bit-identical to `numpy_rows` (tested); about
# 15× faster on a CPU, which is what keeps verification within its CPU budget.

_U_MUL1, _U_MUL2 = np.uint32(MUL1), np.uint32(MUL2)
_CHUNK_ELEMENTS = 1 << 16  # 256 KiB of uint32: stays in L2 through the ~20 passes


def _mix32_u32(x: np.ndarray) -> None:
    x ^= x >> np.uint32(16)
    x *= _U_MUL1
    x ^= x >> np.uint32(15)
    x *= _U_MUL2
    x ^= x >> np.uint32(15)


def fill_block(key: tuple[int, int], n: int, rows: np.ndarray, cols: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out[a, b] = element (rows[a], cols[b]) of the n×n matrix with stream key `key` (float32)."""
    k0, k1 = np.uint32(key[0]), np.uint32(key[1])
    rows = np.asarray(rows, dtype=np.uint32)
    cols = np.asarray(cols, dtype=np.uint32)
    step = max(1, _CHUNK_ELEMENTS // max(1, len(cols)))
    scratch = np.empty((min(step, len(rows)), len(cols)), dtype=np.uint32)
    for a in range(0, len(rows), step):
        r = rows[a : a + step]
        h = scratch[: len(r)]
        np.add((r * np.uint32(n))[:, None], cols[None, :], out=h)
        h ^= k0
        _mix32_u32(h)
        h ^= k1
        _mix32_u32(h)
        h >>= np.uint32(8)
        block = out[a : a + len(r)]
        np.subtract(h.view(np.int32), np.int32(1 << 23), out=block, casting="unsafe")
        block *= np.float32(2.0**-23)
    return out
