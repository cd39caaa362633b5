"""The matrix-chain challenge: deterministic tasks, honest float32 accepted, cheats rejected."""

from __future__ import annotations

import math

import numpy as np
import pytest

from subnet.challenges.base import task_seed
from subnet.challenges.matrix_chain import MatrixChain, draw_matrices
from subnet.protocol import FaultKind


def float32_answer(seed: int, n: int, depth: int, layers: int | None = None) -> np.ndarray:
    x, weights = draw_matrices(seed, n, depth)
    y = x
    for w in weights[: layers if layers is not None else depth]:
        y = np.tanh((y @ w) * np.float32(1 / math.sqrt(n)))
    return y.sum(axis=1)


def tf32(a: np.ndarray) -> np.ndarray:
    """Round float32 to TF32's 10-bit mantissa, as Ampere tensor cores do."""
    bits = a.astype(np.float32).view(np.uint32)
    return ((bits + (1 << 12)) & ~np.uint32((1 << 13) - 1)).view(np.float32)


@pytest.fixture
def challenge() -> MatrixChain:
    return MatrixChain(n=128, depth=4)


def test_tasks_follow_the_design_seed_rule(challenge):
    tasks = challenge.make_tasks(b"round-seed", 3)
    assert [t.index for t in tasks] == [0, 1, 2]
    import hashlib

    expected = int.from_bytes(hashlib.sha256(b"round-seed" + (1).to_bytes(8, "big")).digest()[:8], "big")
    assert tasks[1].seed == expected == task_seed(b"round-seed", 1)
    assert tasks[1].payload == {"seed": expected, "n": 128, "depth": 4}
    assert challenge.make_tasks(b"round-seed", 3) == tasks
    assert challenge.make_tasks(b"other-seed", 3)[0].seed != tasks[0].seed


def test_honest_float32_is_accepted_every_time(challenge):
    for task in challenge.make_tasks(b"honest", 8):
        answer = {"row_sums": float32_answer(task.seed, 128, 4).tolist()}
        verdict = challenge.verify(task, answer)
        assert verdict.ok, verdict.reason


def test_reference_env_is_accepted_at_larger_sizes():
    big = MatrixChain(n=512, depth=6)
    task = big.make_tasks(b"big", 1)[0]
    assert big.verify(task, {"row_sums": float32_answer(task.seed, 512, 6).tolist()}).ok


@pytest.mark.parametrize(
    "cheat",
    ["skipped_layer", "noise", "zeros", "half_zero", "one_zero", "random", "other_seed", "tf32", "nan", "inf"],
)
def test_cheats_are_rejected_as_wrong_answers(challenge, cheat):
    task = challenge.make_tasks(b"cheat", 1)[0]
    honest = float32_answer(task.seed, 128, 4).astype(np.float64)
    rng = np.random.default_rng(1)
    if cheat == "tf32":
        x, weights = draw_matrices(task.seed, 128, 4)
        y = x
        for w in weights:
            y = np.tanh((tf32(y) @ tf32(w)) / np.float32(math.sqrt(128)))
        answer = y.sum(axis=1).astype(np.float64)
    else:
        answer = {
            "skipped_layer": float32_answer(task.seed, 128, 4, layers=3),
            "noise": honest + rng.normal(0, 0.01, 128),
            "zeros": np.zeros(128),
            "half_zero": np.where(np.arange(128) < 64, honest, 0.0),
            "one_zero": np.where(np.arange(128) == 5, 0.0, honest),
            "random": rng.standard_normal(128),
            "other_seed": float32_answer(task.seed + 1, 128, 4),
            "nan": np.where(np.arange(128) == 3, np.nan, honest),
            "inf": np.where(np.arange(128) == 3, np.inf, honest),
        }[cheat].astype(np.float64)
    payload = {"row_sums": [float(v) for v in answer]}
    verdict = challenge.verify(task, payload)
    assert not verdict.ok
    assert verdict.fault is FaultKind.WRONG_ANSWER, verdict


@pytest.mark.parametrize(
    "answer,needle",
    [
        ([1, 2, 3], "not a JSON object"),
        ({"score": 1.0, "success": True}, "self-reported"),
        ({"row_sums": [1.0] * 127}, "127"),
        ({"row_sums": "1,2,3"}, "str"),
        ({"row_sums": [True] * 128}, "non-numbers"),
        ({"row_sums": ["1.0"] * 128}, "non-numbers"),
        (None, "NoneType"),
    ],
)
def test_malformed_answers_are_bad_output(challenge, answer, needle):
    task = challenge.make_tasks(b"shape", 1)[0]
    verdict = challenge.verify(task, answer)
    assert verdict.fault is FaultKind.BAD_OUTPUT
    assert needle in verdict.reason


def test_mostly_wrong_answers_are_always_caught(challenge):
    """16 sampled rows all miss 96 wrong rows of 128 with probability 0.25**16 ≈ 2e-10."""
    task = challenge.make_tasks(b"sample", 1)[0]
    honest = float32_answer(task.seed, 128, 4).astype(np.float64)
    corrupted = honest + np.where(np.arange(128) % 4 == 0, 0.0, 1.0)
    assert not any(challenge.verify(task, {"row_sums": corrupted.tolist()}).ok for _ in range(20))


def test_rows_are_sampled_fresh_for_every_answer(challenge):
    """One wrong row of 128 is caught at the sampling rate, 16/128: 50 of 400 expected.
    The bounds sit over 4 standard deviations out (σ ≈ 6.6), so this fails only if sampling is
    not fresh and uniform (e.g. always the same rows: 0 or 400)."""
    task = challenge.make_tasks(b"sample", 1)[0]
    corrupted = float32_answer(task.seed, 128, 4).astype(np.float64)
    corrupted[77] += 1.0
    caught = sum(not challenge.verify(task, {"row_sums": corrupted.tolist()}).ok for _ in range(400))
    assert 20 <= caught <= 80
