"""docs/challenge.md's test vectors are what the validator's code computes, bit for bit."""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path

import numpy as np

from subnet.challenges.counter_rng import hash_counters, numpy_matrix, stream_key
from subnet.challenges.matrix_chain import VERSION, MatrixChain, layer_scale, miner_key

DOC = Path(__file__).resolve().parent.parent / "docs" / "challenge.md"


def doc_vectors() -> dict:
    text = DOC.read_text()
    block = re.search(r"<!-- test-vectors:begin -->\s*```json\n(.*?)```\s*<!-- test-vectors:end -->", text, re.S)
    assert block, "docs/challenge.md lost its test-vector block"
    return json.loads(block.group(1))


def hexes(values) -> list[str]:
    return ["0x%08x" % int(v) for v in values]


def test_document_vectors_match_the_code():
    v = doc_vectors()
    n, depth = v["n"], v["depth"]
    task_key = hashlib.sha256(b"matrix-chain/2 test vector").digest()
    assert v["task_key"] == task_key.hex()
    mkey = miner_key(task_key, v["hotkey"])
    assert v["miner_key"] == mkey.hex()
    assert v["scale"] == float(layer_scale(n))
    assert v["scale_float32_bits"] == "0x%08x" % struct.unpack("<I", struct.pack("<f", layer_scale(n)))[0]
    assert hexes(stream_key(mkey, "X")) == v["X_k0k1"] and hexes(stream_key(task_key, "W1")) == v["W1_k0k1"]
    assert hexes(hash_counters(np.arange(4, dtype=np.int64), *stream_key(mkey, "X"))) == v["X_row0_hash"]
    assert hexes(hash_counters(np.arange(4, dtype=np.int64), *stream_key(task_key, "W1"))) == v["W1_row0_hash"]
    x = numpy_matrix(mkey, "X", n)
    assert x[0, :4].tolist() == v["X_row0_first4"]
    assert numpy_matrix(task_key, "W1", n)[0, :4].tolist() == v["W1_row0_first4"]
    y = x.astype(np.float64)
    for layer in range(1, depth + 1):
        y = np.tanh((y @ numpy_matrix(task_key, f"W{layer}", n).astype(np.float64)) * float(layer_scale(n)))
    assert np.allclose(y.sum(axis=1), v["row_sums"], rtol=0, atol=2e-9)


def test_document_vectors_are_what_a_validator_accepts():
    v = doc_vectors()
    challenge = MatrixChain(n=v["n"], depth=v["depth"])
    task = challenge.make_tasks(b"unused", 1)[0]
    task = type(task)(task.index, task.seed, {**task.payload, "task_key": v["task_key"]})
    payload = challenge.payload(task, v["hotkey"])
    assert payload["miner_key"] == v["miner_key"] and payload["version"] == VERSION
    claim = challenge.receive(task, v["hotkey"], {"row_sums": v["row_sums"]})
    assert challenge.verify(task, [claim])[0].ok
