"""matrix-chain/2: the generator, per-miner payloads, honest float32 accepted, cheats rejected."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from subnet.challenges.base import Claim, task_seed
from subnet.challenges.counter_rng import fill_block, numpy_matrix, numpy_rows, stream_key
from subnet.challenges.matrix_chain import VERSION, MatrixChain, layer_scale, miner_key, reference_row_sums
from subnet.protocol import FaultKind

N, DEPTH = 128, 4


def float32_answer(payload: dict, layers: int | None = None, rounding=None, inner: int | None = None,
                   x_key: str | None = None) -> np.ndarray:
    """The chain in float32 as a miner computes it, with optional cheats."""
    n, depth = payload["n"], payload["depth"]
    y = numpy_matrix(bytes.fromhex(x_key or payload["miner_key"]), "X", n)
    for layer in range(1, (layers if layers is not None else depth) + 1):
        w = numpy_matrix(bytes.fromhex(payload["task_key"]), f"W{layer}", n)
        a, b = (rounding(y), rounding(w)) if rounding else (y, w)
        if inner is not None:
            a, b = a[:, :inner], b[:inner]
        y = np.tanh((a @ b) * layer_scale(n))
    return y.sum(axis=1).astype(np.float64)


def tf32(a: np.ndarray) -> np.ndarray:
    """Round float32 to TF32's 10-bit mantissa, as Ampere tensor cores do."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((bits + np.uint32(1 << 12)) & ~np.uint32((1 << 13) - 1)).view(np.float32)


@pytest.fixture
def challenge() -> MatrixChain:
    return MatrixChain(n=N, depth=DEPTH)


def verify_one(challenge: MatrixChain, task, hotkey: str, answer):
    return challenge.verify(task, [challenge.receive(task, hotkey, answer)])[0]


def test_fast_generator_is_bit_identical_to_the_int64_spec():
    key = b"\x07" * 32
    spec = numpy_matrix(key, "W3", 97)
    assert spec.dtype == np.float32 and spec.min() >= -1.0 and spec.max() < 1.0
    assert np.array_equal(spec * 2.0**23, np.round(spec * 2.0**23))  # 24-bit grid: exact in float32
    fast = fill_block(stream_key(key, "W3"), 97, np.arange(97), np.arange(97), np.empty((97, 97), np.float32))
    assert np.array_equal(fast, spec)
    rows, cols = np.array([96, 3, 40]), np.arange(10, 60)
    block = fill_block(stream_key(key, "W3"), 97, rows, cols, np.empty((3, 50), np.float32))
    assert np.array_equal(block, spec[rows][:, cols])
    assert np.array_equal(numpy_rows(key, "W3", 97, rows), spec[rows])


def test_generator_values_look_uniform():
    values = numpy_matrix(b"\x01" * 32, "X", 512).ravel()
    assert abs(values.mean()) < 0.01 and abs(values.std() - 1 / math.sqrt(3)) < 0.01
    assert len(np.unique(values)) > 0.95 * len(values)


def test_tasks_carry_the_version_and_a_key_from_the_round_seed(challenge):
    tasks = challenge.make_tasks(b"round-seed", 3)
    assert [t.index for t in tasks] == [0, 1, 2]
    key = hashlib.sha256(b"round-seed" + (1).to_bytes(8, "big")).digest()
    assert tasks[1].payload == {"version": VERSION, "task_key": key.hex(), "n": N, "depth": DEPTH}
    assert tasks[1].seed == task_seed(b"round-seed", 1)
    assert challenge.make_tasks(b"round-seed", 3) == tasks
    assert challenge.make_tasks(b"other-seed", 3)[0].payload["task_key"] != tasks[0].payload["task_key"]


def test_each_miner_gets_its_own_x_and_shares_w(challenge):
    task = challenge.make_tasks(b"miners", 1)[0]
    a, b = challenge.payload(task, "hotkey-a"), challenge.payload(task, "hotkey-b")
    assert a["task_key"] == b["task_key"] == task.payload["task_key"]
    assert a["miner_key"] != b["miner_key"]
    assert a["miner_key"] == hashlib.sha256(bytes.fromhex(a["task_key"]) + b"hotkey-a").hexdigest()
    assert a["miner_key"] == miner_key(bytes.fromhex(a["task_key"]), "hotkey-a").hex()
    xa = numpy_matrix(bytes.fromhex(a["miner_key"]), "X", N)
    xb = numpy_matrix(bytes.fromhex(b["miner_key"]), "X", N)
    assert np.mean(xa == xb) < 0.01


def test_honest_float32_is_accepted_for_every_miner_in_one_batch(challenge):
    for task in challenge.make_tasks(b"honest", 4):
        hotkeys = [f"miner-{i}" for i in range(6)]
        claims = [challenge.receive(task, h, {"row_sums": float32_answer(challenge.payload(task, h)).tolist()})
                  for h in hotkeys]
        verdicts = challenge.verify(task, claims)
        assert all(v.ok for v in verdicts), verdicts


def test_batched_verdicts_keep_their_claims_order(challenge):
    task = challenge.make_tasks(b"order", 1)[0]
    good = lambda h: {"row_sums": float32_answer(challenge.payload(task, h)).tolist()}  # noqa: E731
    claims = [challenge.receive(task, "a", good("a")), challenge.receive(task, "b", [1]),
              challenge.receive(task, "c", good("b")), challenge.receive(task, "d", good("d"))]
    verdicts = challenge.verify(task, claims)
    assert [v.ok for v in verdicts] == [True, False, False, True]
    assert verdicts[1].fault is FaultKind.BAD_OUTPUT and verdicts[2].fault is FaultKind.WRONG_ANSWER


def test_streamed_reference_matches_float64_with_ragged_blocks():
    task_key, key = b"\x03" * 32, b"\x04" * 32
    n, depth = 70, 3
    y = numpy_matrix(key, "X", n).astype(np.float64)
    for layer in range(1, depth + 1):
        y = np.tanh((y @ numpy_matrix(task_key, f"W{layer}", n).astype(np.float64)) * float(layer_scale(n)))
    rows = np.array([69, 0, 33])
    streamed = reference_row_sums(task_key, n, depth, [(key, rows), (key, rows[:1])], block=16)
    assert np.allclose(streamed, np.concatenate([y.sum(axis=1)[rows], y.sum(axis=1)[rows[:1]]]), atol=1e-4)


def test_larger_sizes_are_accepted():
    big = MatrixChain(n=512, depth=6)
    task = big.make_tasks(b"big", 1)[0]
    assert verify_one(big, task, "m", {"row_sums": float32_answer(big.payload(task, "m")).tolist()}).ok


CHEATS = ["skipped_layer", "partial_inner", "noise", "zeros", "half_zero", "one_zero", "random",
          "other_task", "relayed", "tf32", "nan", "inf"]


@pytest.mark.parametrize("cheat", CHEATS)
def test_cheats_are_rejected_as_wrong_answers(challenge, cheat):
    task = challenge.make_tasks(b"cheat", 1)[0]
    payload = challenge.payload(task, "cheater")
    honest = float32_answer(payload)
    rng = np.random.default_rng(1)
    make = {
        "skipped_layer": lambda: float32_answer(payload, layers=DEPTH - 1),
        "partial_inner": lambda: float32_answer(payload, inner=N * 7 // 8),
        "noise": lambda: honest + rng.normal(0, 0.01, N),
        "zeros": lambda: np.zeros(N),
        "half_zero": lambda: np.where(np.arange(N) < N // 2, honest, 0.0),
        "one_zero": lambda: np.where(np.arange(N) == 5, 0.0, honest),
        "random": lambda: rng.standard_normal(N) * honest.std(),
        "other_task": lambda: float32_answer(challenge.payload(challenge.make_tasks(b"other", 1)[0], "cheater")),
        "relayed": lambda: float32_answer(payload, x_key=challenge.payload(task, "someone-else")["miner_key"]),
        "tf32": lambda: float32_answer(payload, rounding=tf32),
        "nan": lambda: np.where(np.arange(N) == 3, np.nan, honest),
        "inf": lambda: np.where(np.arange(N) == 3, np.inf, honest),
    }
    answer = {"row_sums": [float(v) for v in make[cheat]()]}
    # TF32-like rows fail ~90 % of the time each; five fresh samples of k rows all missing is ~1e-5.
    verdicts = [verify_one(challenge, task, "cheater", answer) for _ in range(5 if cheat == "tf32" else 1)]
    assert not all(v.ok for v in verdicts)
    assert all(v.fault is FaultKind.WRONG_ANSWER for v in verdicts if not v.ok), verdicts


@pytest.mark.parametrize(
    "answer,needle",
    [
        ([1, 2, 3], "not a JSON object"),
        ({"score": 1.0, "success": True}, "self-reported"),
        ({"row_sums": [1.0] * (N - 1)}, str(N - 1)),
        ({"row_sums": "1,2,3"}, "str"),
        ({"row_sums": [True] * N}, "non-numbers"),
        ({"row_sums": ["1.0"] * N}, "non-numbers"),
        (None, "NoneType"),
    ],
)
def test_malformed_answers_are_bad_output(challenge, answer, needle):
    task = challenge.make_tasks(b"shape", 1)[0]
    verdict = verify_one(challenge, task, "m", answer)
    assert verdict.fault is FaultKind.BAD_OUTPUT
    assert needle in verdict.reason


def test_receive_keeps_only_the_sampled_numbers(challenge):
    task = challenge.make_tasks(b"small", 1)[0]
    claim = challenge.receive(task, "m", {"row_sums": float32_answer(challenge.payload(task, "m")).tolist()})
    assert isinstance(claim, Claim) and claim.verdict is None
    assert len(claim.data.rows) == len(claim.data.claimed) == challenge.sampled_rows == 2


def test_rows_are_sampled_fresh_for_every_answer(challenge):
    """One wrong row of 128 is caught at the sampling rate, 2/128: 25 of 1600 expected.
    The bounds sit over 4 standard deviations out (σ ≈ 5), so this fails only if sampling is
    not fresh and uniform (e.g. always the same rows: 0 or 1600)."""
    task = challenge.make_tasks(b"sample", 1)[0]
    corrupted = float32_answer(challenge.payload(task, "m"))
    corrupted[77] += 1.0
    answer = {"row_sums": corrupted.tolist()}
    claims = [challenge.receive(task, "m", answer) for _ in range(1600)]
    caught = sum(not v.ok for v in challenge.verify(task, claims))
    assert 5 <= caught <= 50


def test_numpy_reference_env_matches_the_spec_and_is_verified():
    import importlib.util
    from pathlib import Path

    env_py = Path(__file__).resolve().parent.parent / "envs" / "matrix-chain-numpy" / "env.py"
    spec = importlib.util.spec_from_file_location("matrix_chain_numpy_env", env_py)
    env = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(env)
    assert np.array_equal(env.matrix(b"\x05" * 32, "W1", 77), numpy_matrix(b"\x05" * 32, "W1", 77))
    challenge = MatrixChain(n=160, depth=3)
    task = challenge.make_tasks(b"numpy-env", 1)[0]
    claims = [challenge.receive(task, h, env.Actor().evaluate(**challenge.payload(task, h))) for h in ("a", "b")]
    assert all(v.ok for v in challenge.verify(task, claims))
    with pytest.raises(ValueError, match="matrix-chain/2"):
        env.Actor().evaluate(version="matrix-chain/1")
