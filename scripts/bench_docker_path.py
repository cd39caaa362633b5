#!/usr/bin/env python3
"""What Docker mode adds to each Actor call, against the process runtime, for one env.

    python scripts/bench_docker_path.py                       # n = 256 (the dry-run size), 12 calls
    python scripts/bench_docker_path.py --n 12800 --depth 2 --calls 2 --memory 4g --timeout 900

The same env folder (default: envs/matrix-chain-numpy) is called the way a validator calls it,
`--at-once` calls in flight (1 by default; a validator allows 4 per miner), in three settings measured side by side in one run:

  process          the env in a local subprocess (no limits: its BLAS uses every core)
  docker           the hardened container exactly as a validator runs it (SUBNET_DOCKER_CPUS)
  docker+threads   the same container told how many CPUs it has (OMP/OpenBLAS/MKL thread
                   variables = the CPU limit), as the Docker runtime now does

Per setting it prints the validator-measured p50 (with `--repeat R`: the median and range of R
batches, interleaved across settings) and, from the env's own `elapsed_ms` (the time
inside `evaluate`), how that latency splits into compute and path (HTTP, JSON, the server, the
container's network). The image is built once (tag `subnet-bench/<env>:latest`, labelled
`io.subnet.bench=1`; remove with `docker image rm`). Numbers on a shared machine are noisy: compare
the rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from subnet.util import aio  # noqa: E402
from subnet.challenges.matrix_chain import MatrixChain  # noqa: E402
from subnet.config import Settings  # noqa: E402
from subnet.protocol import EVALUATE_METHOD, Submission  # noqa: E402
from subnet.runtime.docker import DockerRuntime  # noqa: E402
from subnet.runtime.docker_settings import DockerSettings  # noqa: E402
from subnet.runtime.process import ProcessRuntime  # noqa: E402


async def _calls(runtime, submission: Submission, challenge: MatrixChain, calls: int, timeout: float,
                 at_once: int) -> list[tuple[float, float]]:
    """(validator latency ms, the env's own elapsed_ms) per call, `at_once` calls in flight."""
    tasks = challenge.make_tasks(os.urandom(32), calls)
    out: list[tuple[float, float]] = []
    gate = asyncio.Semaphore(at_once)

    async def one(actor, task, of: MatrixChain = challenge) -> tuple[float, float]:
        kwargs = {"task_id": task.index, **of.payload(task, submission.hotkey), "timeout": timeout}
        async with gate:
            started = time.perf_counter()
            answer = await actor.call(EVALUATE_METHOD, kwargs, timeout)
            return (time.perf_counter() - started) * 1000, float(answer.get("elapsed_ms", 0.0))

    warm = MatrixChain(n=8, depth=1)
    async with runtime.open(submission) as actor:
        # warms the server (imports, first allocations) with a tiny task: not counted
        await one(actor, warm.make_tasks(os.urandom(32), 1)[0], warm)
        out = list(await asyncio.gather(*(one(actor, t) for t in tasks)))
    return out


def _p50s(samples: list[tuple[float, float]]) -> tuple[float, float, float]:
    """(latency, compute, path) medians of one batch of calls."""
    return (statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples),
            statistics.median(s[0] - s[1] for s in samples))


def _row(name: str, batches: list[tuple[float, float, float]], calls: int) -> str:
    cells = []
    for i in range(3):
        values = sorted(b[i] for b in batches)
        spread = f" ({values[0]:.1f}–{values[-1]:.1f})" if len(values) > 1 else ""
        cells.append(f"{statistics.median(values):.1f}{spread}")
    return f"{name:<16} {cells[0]:>22} {cells[1]:>22} {cells[2]:>18} {calls * len(batches):>6}"


def _image(env_dir: Path) -> str:
    from subnet.miner.build import build_env_image

    tag = f"subnet-bench/{env_dir.name}:latest"
    built = build_env_image(env_dir, tag, labels={"io.subnet.bench": "1"})
    return built.reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", type=Path, default=REPO / "envs" / "matrix-chain-numpy")
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--calls", type=int, default=12)
    parser.add_argument("--cpus", type=float, default=1.0, help="SUBNET_DOCKER_CPUS of the containers")
    parser.add_argument("--memory", default="2g", help="SUBNET_DOCKER_MEMORY of the containers")
    parser.add_argument("--timeout", type=float, default=60.0, help="per-call deadline, seconds")
    parser.add_argument("--repeat", type=int, default=1,
                        help="batches per setting, interleaved (median and range of the batch p50s)")
    parser.add_argument("--at-once", type=int, default=1,
                        help="calls in flight per Actor (a validator allows SUBNET_PER_MINER, 4)")
    args = parser.parse_args()

    import tempfile

    home = Path(tempfile.mkdtemp(prefix="subnet-bench-home-"))
    settings = Settings(_env_file=None, home=home, start_timeout=120, call_timeout=args.timeout)
    challenge = MatrixChain(n=args.n, depth=args.depth)
    print(f"{args.env.name}: n={args.n} depth={args.depth}, {args.calls} calls per setting "
          f"(after a tiny warm-up call), {args.at_once} at once, containers with {args.cpus:g} CPU and {args.memory}, host has {os.cpu_count()} CPUs")
    reference = _image(args.env)
    limits = dict(_env_file=None, cpus=args.cpus, memory=args.memory, host_guard="off")
    settings_ = [
        ("process", ProcessRuntime(120, settings.max_response_bytes, []), str(args.env)),
        ("docker", DockerRuntime(settings, DockerSettings(**limits, cpu_threads=False), allow_local=True), reference),
        ("docker+threads", DockerRuntime(settings, DockerSettings(**limits, cpu_threads=True), allow_local=True), reference),
    ]
    print(f"{'setting':<16} {'p50 ms':>22} {'compute':>22} {'path':>18} {'calls':>6}")
    batches: dict[str, list[tuple[float, float, float]]] = {name: [] for name, _, _ in settings_}
    try:
        for _ in range(args.repeat):  # interleaved, so a noisy neighbour hits every setting alike
            for name, runtime, source in settings_:
                submission = Submission(uid=1, hotkey="bench", source=source,
                                        digest=reference.rsplit("@", 1)[-1], label=name)
                samples = aio.run(_calls(runtime, submission, challenge, args.calls, args.timeout, args.at_once))
                batches[name].append(_p50s(samples))
    finally:
        for _, runtime, _ in settings_:
            with contextlib.suppress(Exception):
                getattr(runtime, "close", lambda: None)()
    for name, found in batches.items():
        if found:
            print(_row(name, found, args.calls), flush=True)
    print("p50 of each batch, median over batches (range); compute: the env's own elapsed_ms (inside "
          "evaluate); path: latency − elapsed_ms")


if __name__ == "__main__":
    main()
