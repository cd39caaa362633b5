"""Builds miner env folders for tests: one honest core plus a behaviour per fault.

Each folder is self-contained (env.py, requirements.txt, Dockerfile) like a real miner's, so the
same fixtures run under the process runtime and in Docker.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

HONEST_CORE = '''
import math, time
import numpy as np

def row_sums(seed, n, depth, layers=None):
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    y = rng.standard_normal((n, n), dtype=np.float32)
    scale = np.float32(1.0 / math.sqrt(n))
    for i in range(depth):
        w = rng.standard_normal((n, n), dtype=np.float32)
        if layers is None or i < layers:
            y = np.tanh((y @ w) * scale)
    return y.sum(axis=1)
'''

BEHAVIOURS = {
    "honest": "return {'row_sums': row_sums(seed, n, depth).tolist()}",
    "slow": "time.sleep(0.6)\n        return {'row_sums': row_sums(seed, n, depth).tolist()}",
    "async_honest": None,  # see ASYNC_ACTOR
    "raises": "raise RuntimeError('boom: the env crashed on purpose')",
    "non_dict": "return [1, 2, 3]",
    "self_scored": "return {'score': 1.0, 'success': True, 'task_id': task_id}",
    "wrong": "return {'row_sums': np.random.default_rng().standard_normal(n).tolist()}",
    "partial": "s = row_sums(seed, n, depth)\n        s[n // 2:] = 0.0\n        return {'row_sums': s.tolist()}",
    "one_zero_row": "s = row_sums(seed, n, depth)\n        s[7] = 0.0\n        return {'row_sums': s.tolist()}",
    "noisy": "s = row_sums(seed, n, depth).astype(np.float64)\n        return {'row_sums': (s + np.random.default_rng().normal(0, 0.05, n)).tolist()}",
    "skipped_layer": "return {'row_sums': row_sums(seed, n, depth, layers=depth - 1).tolist()}",
    "short": "return {'row_sums': row_sums(seed, n, depth)[:-1].tolist()}",
    "strings": "return {'row_sums': [str(v) for v in row_sums(seed, n, depth)]}",
    "nan": "s = row_sums(seed, n, depth)\n        s[0] = float('nan')\n        return {'row_sums': s.tolist()}",
    "huge": "return {'row_sums': row_sums(seed, n, depth).tolist(), 'padding': 'x' * (8 << 20)}",
    "hangs": "time.sleep(3600)",
}

ACTOR = '''
class Actor:
    def evaluate(self, task_id=0, seed=0, n=256, depth=4, timeout=30, **_):
        {body}
'''

ASYNC_ACTOR = '''
import asyncio

class Actor:
    async def evaluate(self, task_id=0, seed=0, n=256, depth=4, timeout=30, **_):
        await asyncio.sleep(0)
        return {'row_sums': row_sums(seed, n, depth).tolist()}
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
    elif problem == "import_error":
        (folder / "env.py").write_text("import not_a_real_module_xyz\n\nclass Actor:\n    def evaluate(self, **kw):\n        return {}\n")
    elif problem == "exits_at_import":
        (folder / "env.py").write_text("import os\nos._exit(3)\n\nclass Actor:\n    def evaluate(self, **kw):\n        return {}\n")
    else:
        raise ValueError(problem)
    return folder
