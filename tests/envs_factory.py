"""Builds miner env folders for tests: one honest core plus a behaviour per fault.

Each folder is self-contained (env.py, requirements.txt, Dockerfile) like a real miner's, so the
same fixtures run under the process runtime and in Docker.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

HONEST_CORE = '''
import hashlib, math, time
import numpy as np

def matrix(key, label, n):
    # matrix-chain/2's generator (docs/challenge.md) in uint32: multiplies wrap mod 2^32
    d = hashlib.sha256(bytes.fromhex(key) + label.encode()).digest()
    k0, k1 = np.uint32(int.from_bytes(d[:4], 'big')), np.uint32(int.from_bytes(d[4:8], 'big'))
    h = np.arange(n * n, dtype=np.uint32).reshape(n, n)
    for k in (k0, k1):
        h ^= k
        h ^= h >> np.uint32(16); h *= np.uint32(0x21F0AAAD)
        h ^= h >> np.uint32(15); h *= np.uint32(0x735A2D97)
        h ^= h >> np.uint32(15)
    return ((h >> np.uint32(8)).astype(np.int32) - (1 << 23)).astype(np.float32) * np.float32(2.0 ** -23)

def row_sums(keys, n, depth, layers=None):
    task_key, miner_key = keys
    y = matrix(miner_key, 'X', n)
    scale = np.float32(1.5 * math.sqrt(3.0 / n))
    for i in range(depth if layers is None else layers):
        y = np.tanh((y @ matrix(task_key, 'W%d' % (i + 1), n)) * scale)
    return y.sum(axis=1)

def other_miner(task_key):
    return hashlib.sha256(bytes.fromhex(task_key) + b'someone-else').hexdigest()
'''

BEHAVIOURS = {
    "honest": "return {'row_sums': row_sums(keys, n, depth).tolist()}",
    "slow": "time.sleep(0.6)\n        return {'row_sums': row_sums(keys, n, depth).tolist()}",
    "async_honest": None,  # see ASYNC_ACTOR
    "raises": "raise RuntimeError('boom: the env crashed on purpose')",
    "non_dict": "return [1, 2, 3]",
    "self_scored": "return {'score': 1.0, 'success': True, 'task_id': task_id}",
    "wrong": "return {'row_sums': np.random.default_rng().standard_normal(n).tolist()}",
    "partial": "s = row_sums(keys, n, depth)\n        s[n // 2:] = 0.0\n        return {'row_sums': s.tolist()}",
    "one_zero_row": "s = row_sums(keys, n, depth)\n        s[7] = 0.0\n        return {'row_sums': s.tolist()}",
    "noisy": "s = row_sums(keys, n, depth).astype(np.float64)\n        return {'row_sums': (s + np.random.default_rng().normal(0, 0.05, n)).tolist()}",
    "skipped_layer": "return {'row_sums': row_sums(keys, n, depth, layers=depth - 1).tolist()}",
    "short": "return {'row_sums': row_sums(keys, n, depth)[:-1].tolist()}",
    "strings": "return {'row_sums': [str(v) for v in row_sums(keys, n, depth)]}",
    "nan": "s = row_sums(keys, n, depth)\n        s[0] = float('nan')\n        return {'row_sums': s.tolist()}",
    "huge": "return {'row_sums': row_sums(keys, n, depth).tolist(), 'padding': 'x' * (8 << 20)}",
    "hangs": "time.sleep(3600)",
    "relayed": "return {'row_sums': row_sums((task_key, other_miner(task_key)), n, depth).tolist()}",
}

ACTOR = '''
class Actor:
    def evaluate(self, task_id=0, task_key='', miner_key='', n=256, depth=4, timeout=30, **_):
        keys = (task_key, miner_key)
        {body}
'''

ASYNC_ACTOR = '''
import asyncio

class Actor:
    async def evaluate(self, task_id=0, task_key='', miner_key='', n=256, depth=4, timeout=30, **_):
        await asyncio.sleep(0)
        return {'row_sums': row_sums((task_key, miner_key), n, depth).tolist()}
'''

DOCKERFILE = """FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
"""


def make_env(root: Path, kind: str, name: str | None = None) -> Path:
    """Write an env folder showing `kind` behaviour under `root`; returns the folder."""
    folder = root / (name or kind)
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "async_honest":
        actor = ASYNC_ACTOR
    else:
        actor = ACTOR.format(body=BEHAVIOURS[kind])
    (folder / "env.py").write_text(HONEST_CORE + textwrap.dedent(actor))
    (folder / "requirements.txt").write_text("numpy\n")
    (folder / "Dockerfile").write_text(DOCKERFILE)
    return folder


def make_broken_env(root: Path, problem: str) -> Path:
    """Env folders that are not valid Actor envs at all."""
    folder = root / problem
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "requirements.txt").write_text("numpy\n")
    if problem == "no_env_py":
        (folder / "README.md").write_text("forgot env.py\n")
    elif problem == "no_actor":
        (folder / "env.py").write_text("def evaluate(**kwargs):\n    return {}\n")
    elif problem == "syntax_error":
        (folder / "env.py").write_text("class Actor(:\n")
    elif problem == "import_error":  # the import sits on line 2, which the reason must name
        (folder / "env.py").write_text("import os\nimport not_a_real_module_xyz\n\nclass Actor:\n    def evaluate(self, **kw):\n        return {}\n")
    elif problem == "exits_at_import":
        (folder / "env.py").write_text("import os\nos._exit(3)\n\nclass Actor:\n    def evaluate(self, **kw):\n        return {}\n")
    else:
        raise ValueError(problem)
    return folder


MULTI_MODULE_ENV = """
import time

import helper
from kernels.chain import run_chain


class Actor:
    def evaluate(self, task_id=0, task_key='', miner_key='', n=256, depth=4, timeout=30, **_):
        started = time.perf_counter()
        return {'row_sums': run_chain(task_key, miner_key, n, depth).tolist(), 'label': helper.LABEL,
                'elapsed_ms': (time.perf_counter() - started) * 1000}
"""


def make_multi_module_env(root: Path, broken_sibling: bool = False) -> Path:
    """An env split over env.py, a sibling module and a subpackage (kernels/chain.py), as a miner
    who moves the reference kernel into its own files would write it. With `broken_sibling` the
    sibling raises at import, at a known line (helper.py:2)."""
    folder = root / ("broken-sibling" if broken_sibling else "multi-module")
    (folder / "kernels").mkdir(parents=True, exist_ok=True)
    (folder / "env.py").write_text(MULTI_MODULE_ENV)
    helper = "LABEL = 'multi-module'\n"
    if broken_sibling:
        helper = "LABEL = 'broken'\nraise ImportError('helper cannot find its kernel library')\n"
    (folder / "helper.py").write_text(helper)
    (folder / "kernels" / "__init__.py").write_text("")
    (folder / "kernels" / "chain.py").write_text(HONEST_CORE + "\n\ndef run_chain(task_key, miner_key, n, depth):\n"
                                                 "    return row_sums((task_key, miner_key), n, depth)\n")
    (folder / "requirements.txt").write_text("numpy\n")
    (folder / "Dockerfile").write_text(DOCKERFILE)
    return folder
