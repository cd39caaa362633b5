"""`matrix-chain/2`: fast, correct float32 work on per-miner inputs through shared weights.

Task (normative text and test vectors: docs/challenge.md). From the payload's `task_key` and
`miner_key` (32 bytes each, hex): X = matrix(miner_key, "X"), W_l = matrix(task_key, "W<l>") for
l = 1..depth (see `counter_rng`); Y_0 = X, Y_l = tanh((Y_{l-1} @ W_l) · scale) with
scale = float32(GAIN · sqrt(3 / n)); the answer is {"row_sums": Y_depth.sum(1)} (n numbers).
`miner_key` = sha256(task_key ‖ hotkey): two miners never get the same X, so relaying another
miner's answer fails, while W is shared and generated once per task by the validator.

Verification (`verify_rows`): `receive` samples k rows of each answer the moment it arrives (fresh
randomness the miner cannot see), keeping only k numbers; `verify` then pushes every miner's
sampled rows of a task through W_1..W_depth in one batched float32 pass, generating W in column
blocks so no task's matrices are ever held whole.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from subnet.challenges.base import Claim, Task, Verdict, task_seed
from subnet.challenges.counter_rng import MAX_N, fill_block, stream_key
from subnet.protocol import FaultKind

VERSION = "matrix-chain/2"
GAIN = 1.5  # tanh keeps a stable, unsaturated activation scale through the depth (see docs)
SAMPLED_ROWS = 2  # the least k for which skipping rows never pays (docs/challenge.md, "Sampling")
# |claimed − reference| ≤ ABS_TOL·√n + REL_TOL·|reference| for every sampled row. Measured by
# scripts/challenge_margins.py (n = 256..2048): honest float32 (numpy, torch, the validator's own
# pass) errs by at most 1.3e-6·√n, 15× inside; TF32-like inputs err by up to 1.2e-3·√n and fail
# over 90 % of rows; a skipped layer or partial inner products fail every row.
ABS_TOLERANCE_PER_SQRT_N = 2e-5
REL_TOLERANCE = 1e-5
BLOCK_COLUMNS = 512


def layer_scale(n: int) -> np.float32:
    return np.float32(GAIN * math.sqrt(3.0 / n))


def task_key(round_seed: bytes, index: int) -> bytes:
    return hashlib.sha256(round_seed + index.to_bytes(8, "big")).digest()


def miner_key(task_key_bytes: bytes, hotkey: str) -> bytes:
    return hashlib.sha256(task_key_bytes + hotkey.encode("utf-8")).digest()


def tolerance(n: int, expected: np.ndarray) -> np.ndarray:
    return ABS_TOLERANCE_PER_SQRT_N * math.sqrt(n) + REL_TOLERANCE * np.abs(expected)


def reference_row_sums(
    task_key_bytes: bytes, n: int, depth: int, x_rows: Sequence[tuple[bytes, np.ndarray]], block: int = BLOCK_COLUMNS
) -> np.ndarray:
    """Row sums of Y_depth for the given (miner_key, row indices) pairs, all in one float32 pass.

    Memory: two (m × n) activations plus one (n × block) slab of W; W is generated column block by
    column block, once per layer, whatever the number of miners.
    """
    m = sum(len(rows) for _, rows in x_rows)
    y = np.empty((m, n), dtype=np.float32)
    at = 0
    every_column = np.arange(n)
    for key, rows in x_rows:
        fill_block(stream_key(key, "X"), n, rows, every_column, y[at : at + len(rows)])
        at += len(rows)
    scale = layer_scale(n)
    nxt = np.empty_like(y)
    slab = np.empty((n, block), dtype=np.float32)
    for layer in range(1, depth + 1):
        w_key = stream_key(task_key_bytes, f"W{layer}")
        for c0 in range(0, n, block):
            cols = every_column[c0 : c0 + block]
            w = fill_block(w_key, n, every_column, cols, slab[:, : len(cols)])
            np.matmul(y, w, out=nxt[:, c0 : c0 + len(cols)])
        nxt *= scale
        np.tanh(nxt, out=nxt)
        y, nxt = nxt, y
    return y.sum(axis=1, dtype=np.float64)


@dataclass(frozen=True)
class SampledRows:
    """What verification keeps of an answer: k row indices and the miner's values there."""

    miner_key: bytes
    rows: np.ndarray
    claimed: np.ndarray


RowSampler = Callable[[int, int], np.ndarray]


def fresh_rows(n: int, k: int) -> np.ndarray:
    return np.array(sorted(secrets.SystemRandom().sample(range(n), k)))


class MatrixChain:
    name = "matrix-chain"
    version = 2
    verify_in_thread = True
    needs_gpu = True  # float32 matrix work: scored on GPU boxes
    llm_task_budget_usd = None  # no LLM: its Actors get no gateway credentials

    def __init__(self, n: int = 256, depth: int = 4, sampled_rows: int = SAMPLED_ROWS, sampler: RowSampler = fresh_rows) -> None:
        if not 2 <= n <= MAX_N or depth < 1:
            raise ValueError(f"matrix-chain needs 2 <= n <= {MAX_N} and depth >= 1")
        self.n = n
        self.depth = depth
        self.sampled_rows = min(sampled_rows, n)
        self._sample = sampler

    def make_tasks(self, round_seed: bytes, count: int) -> list[Task]:
        tasks = []
        for index in range(count):
            key = task_key(round_seed, index)
            payload = {"version": VERSION, "task_key": key.hex(), "n": self.n, "depth": self.depth}
            tasks.append(Task(index, task_seed(round_seed, index), payload))
        return tasks

    def payload(self, task: Task, hotkey: str) -> Mapping[str, Any]:
        key = bytes.fromhex(task.payload["task_key"])
        return {**task.payload, "miner_key": miner_key(key, hotkey).hex()}

    def receive(self, task: Task, hotkey: str, answer: Any) -> Claim:
        n = int(task.payload["n"])
        sums, problem = _parse_answer(answer, n)
        if problem:
            return Claim(hotkey, Verdict.reject(FaultKind.BAD_OUTPUT, problem))
        if not np.all(np.isfinite(sums)):
            return Claim(hotkey, Verdict.reject(FaultKind.WRONG_ANSWER, "row_sums contains NaN or infinity"))
        zeros = int(np.sum(sums == 0.0))
        if zeros:
            # An honest row sum of n tanh values is never exactly zero; zeros mark skipped rows.
            return Claim(hotkey, Verdict.reject(FaultKind.WRONG_ANSWER, f"{zeros} row sums are exactly 0 (partial work)"))
        rows = self._sample(n, self.sampled_rows)
        key = miner_key(bytes.fromhex(task.payload["task_key"]), hotkey)
        return Claim(hotkey, data=SampledRows(key, rows, sums[rows].copy()))

    def verify(self, task: Task, claims: Sequence[Claim]) -> list[Verdict]:
        pending = [c.data for c in claims if c.verdict is None]
        if pending:
            n, depth = int(task.payload["n"]), int(task.payload["depth"])
            expected = reference_row_sums(bytes.fromhex(task.payload["task_key"]), n, depth,
                                          [(p.miner_key, p.rows) for p in pending])
        verdicts, at = [], 0
        for claim in claims:
            if claim.verdict is not None:
                verdicts.append(claim.verdict)
                continue
            k = len(claim.data.rows)
            verdicts.append(_judge(claim.data.claimed, expected[at : at + k], n))
            at += k
        return verdicts


def _judge(claimed: np.ndarray, expected: np.ndarray, n: int) -> Verdict:
    error = np.abs(claimed - expected)
    bad = error > tolerance(n, expected)
    if np.any(bad):
        return Verdict.reject(FaultKind.WRONG_ANSWER, f"{int(bad.sum())}/{len(bad)} sampled rows off (worst error {float(error.max()):.3g})")
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
