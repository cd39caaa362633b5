"""Benchmark matrix-chain/2: input generation vs compute, FLOPs and GPU estimates, verification cost.

Sections (all numbers printed, nothing asserted):
1. Per size: the time to generate a task's inputs vs to compute the chain, with numpy and torch on
   this CPU (and on CUDA when torch sees a GPU).
2. Per size: FLOPs per task and the time on each allowed GPU at its published FP32 peak, and the
   share of a task's latency that is GPU compute given a 50 ms network round trip.
3. The validator's verification of one round, 256 miners × 8 tasks at the production size, with
   synthetic honest answers, in a child process on one BLAS thread: CPU seconds, peak RSS, and the
   share of one core over the validator's default round interval.

    python scripts/bench_challenge.py [--sizes 256x4,1024x4,2048x2] [--miners 256] [--tasks 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

from subnet.challenges import matrix_chain as mc
from subnet.challenges.counter_rng import fill_block, stream_key
from subnet.config import Settings

# Published FP32 peak (vendor spec sheets): V100 PCIe 14 / SXM2 15.7; RTX A4000 19.2; RTX A6000 38.7.
GPUS = {"V100 (PCIe, 14.0 TFLOPS)": 14.0e12, "V100 (SXM2, 15.7 TFLOPS)": 15.7e12,
        "RTX-A4000 (19.2 TFLOPS)": 19.2e12, "RTX-A6000 (38.7 TFLOPS)": 38.7e12}
NETWORK_RTT_S = 0.050
ROUND_INTERVAL_S = 600.0  # `subnet validator run --interval` default


def task_flops(n: int, depth: int) -> float:
    return 2.0 * depth * n**3


def numpy_task(n: int, depth: int) -> tuple[float, float]:
    """(generation s, compute s) of one task with the validator's fast numpy generator."""
    every = np.arange(n)
    started = time.perf_counter()
    mats = [fill_block(stream_key(b"\x01" * 32, label), n, every, every, np.empty((n, n), np.float32))
            for label in ["X"] + [f"W{l}" for l in range(1, depth + 1)]]
    generated = time.perf_counter()
    y = mats[0]
    for w in mats[1:]:
        y = np.tanh((y @ w) * mc.layer_scale(n))
    y.sum(axis=1)
    return generated - started, time.perf_counter() - generated


def torch_task(n: int, depth: int, device: str) -> tuple[float, float] | None:
    try:
        import torch
    except ImportError:
        return None
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "envs", "matrix-chain-torch"))
    import env as torch_env  # the reference torch env's own generator

    gen = torch_env.Generator(torch.device(device))
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    gen.matrix(b"\x00" * 32, "X", 64)  # warm-up (compiles the kernel on CUDA)
    sync()
    started = time.perf_counter()
    mats = [gen.matrix(b"\x01" * 32, label, n) for label in ["X"] + [f"W{l}" for l in range(1, depth + 1)]]
    sync()
    generated = time.perf_counter()
    y = mats[0]
    for w in mats[1:]:
        y = torch.tanh((y @ w) * float(mc.layer_scale(n)))
    y.sum(dim=1).cpu()
    sync()
    return generated - started, time.perf_counter() - generated


def print_generation(sizes: list[tuple[int, int]]) -> None:
    print("1. input generation vs compute per task (wall seconds, this machine)")
    devices = ["cpu"]
    try:
        import torch

        torch.set_num_threads(1)
        devices += ["cuda"] if torch.cuda.is_available() else []
    except ImportError:
        print("   torch is not installed: numpy only")
    for n, depth in sizes:
        rows = [("numpy cpu", numpy_task(n, depth))] + [(f"torch {d}", torch_task(n, depth, d)) for d in devices]
        for name, result in rows:
            if result:
                gen, comp = result
                print(f"   n={n:5d} depth={depth}  {name:10s} generate {gen * 1e3:9.1f} ms  compute {comp * 1e3:9.1f} ms"
                      f"  generation {gen / (gen + comp):6.1%} of the task")


def print_gpu_estimates(sizes: list[tuple[int, int]]) -> None:
    print(f"\n2. FLOPs per task (2·depth·n³) and time at published FP32 peak; GPU share with a {NETWORK_RTT_S * 1e3:.0f} ms round trip")
    for n, depth in sizes:
        flops = task_flops(n, depth)
        print(f"   n={n:5d} depth={depth}: {flops:.3g} FLOP")
        for gpu, peak in GPUS.items():
            t = flops / peak
            print(f"      {gpu:26s} {t * 1e3:9.1f} ms   GPU share {t / (t + NETWORK_RTT_S):6.1%}")


def verify_round(n: int, depth: int, miners: int, tasks: int) -> dict:
    """Runs in a child process: receive + verify `tasks` tasks of `miners` honest answers."""
    rss_start = peak_rss_mib()
    fixed = {}
    challenge = mc.MatrixChain(n=n, depth=depth, sampler=lambda n_, k: fixed["rows"])
    cpu, wall = 0.0, 0.0
    for task in challenge.make_tasks(os.urandom(32), tasks):
        hotkeys = [f"5-miner-{i:03d}" for i in range(miners)]
        rows = np.array(sorted(np.random.default_rng().choice(n, challenge.sampled_rows, replace=False)))
        fixed["rows"] = rows
        keys = [bytes.fromhex(challenge.payload(task, h)["miner_key"]) for h in hotkeys]
        truth = mc.reference_row_sums(bytes.fromhex(task.payload["task_key"]), n, depth, [(k, rows) for k in keys])
        claims = []
        for i, hotkey in enumerate(hotkeys):  # answers arrive one by one; only k numbers are kept
            answer = np.full(n, 0.5)
            answer[rows] = truth[i * len(rows):(i + 1) * len(rows)]
            answer = {"row_sums": answer.tolist()}  # as the HTTP client hands it over (not timed)
            cpu0, wall0 = time.process_time(), time.perf_counter()
            claims.append(challenge.receive(task, hotkey, answer))
            cpu, wall = cpu + time.process_time() - cpu0, wall + time.perf_counter() - wall0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        verdicts = challenge.verify(task, claims)
        cpu += time.process_time() - cpu0
        wall += time.perf_counter() - wall0
        assert all(v.ok for v in verdicts), [v.reason for v in verdicts if not v.ok][:3]
    return {"cpu_s": cpu, "wall_s": wall, "peak_rss_mib": peak_rss_mib(), "start_rss_mib": rss_start}


def peak_rss_mib() -> float:
    """This process's peak RSS (VmHWM: unlike ru_maxrss, not inherited from the parent at exec)."""
    with open("/proc/self/status") as status:
        line = next(ln for ln in status if ln.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def print_verification(n: int, depth: int, miners: int, tasks: int) -> None:
    print(f"\n3. validator verification, {miners} miners × {tasks} tasks at n={n} depth={depth}, "
          f"k={mc.SAMPLED_ROWS} rows per answer (child process, one BLAS thread, honest answers)")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, __file__, "--child", json.dumps([n, depth, miners, tasks])]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        print("   failed:", done.stderr[-2000:])
        return
    r = json.loads(done.stdout.strip().splitlines()[-1])
    share = r["cpu_s"] / ROUND_INTERVAL_S
    print(f"   CPU {r['cpu_s']:.1f} s (wall {r['wall_s']:.1f} s) per round = {share:.1%} of one core over the "
          f"default {ROUND_INTERVAL_S:.0f} s round interval (budget 10 %)")
    print(f"   peak RSS {r['peak_rss_mib']:.0f} MiB (after imports {r['start_rss_mib']:.0f} MiB; budget 1024 MiB)")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        print(json.dumps(verify_round(*json.loads(sys.argv[2]))))
        return
    defaults = Settings.model_fields
    production = (defaults["n"].default, defaults["depth"].default)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256x4,1024x4,2048x2", help="sizes timed on this machine (NxDEPTH)")
    parser.add_argument("--miners", type=int, default=256)
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--skip-verify", action="store_true")
    args = parser.parse_args()
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes.split(",")]
    print(f"production size (Settings.n × Settings.depth): {production[0]}x{production[1]}; "
          f"dry run: {defaults['dry_run_n'].default}x{defaults['dry_run_depth'].default}\n")
    print_generation(sizes)
    print_gpu_estimates(sorted(set(sizes) | {production}))
    if not args.skip_verify:
        print_verification(production[0], production[1], args.miners, args.tasks)


if __name__ == "__main__":
    main()
