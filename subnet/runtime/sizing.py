"""Will a task size fit a Docker-mode Actor? Pure arithmetic, checked before a validator starts.

A `matrix-chain/2` task of size n × depth (docs/challenge.md) needs, whatever the env does:
- memory: its input X, one weight matrix W at a time and the product — three n×n float32
  matrices, `3 · 4 · n²` bytes — plus the Actor's own server (`SERVER_BYTES`: Python, the
  affinetes server, numpy and the answer's JSON; the reference env's server holds 57 MiB at rest,
  VmRSS of PID 1 in its container). At 12800 that is 1.83 GiB + 0.25 GiB = 2.08 GiB, over the
  default `SUBNET_DOCKER_MEMORY=2g` (the reference numpy env itself peaks near four matrices);
- compute: `2 · depth · n³` FLOP (8.39e12 at 12800×2). Without a GPU the Actor has
  `SUBNET_DOCKER_CPUS` CPUs; at `CPU_FLOPS` per CPU — an optimistic float32 peak (AVX-512, two
  FMA units, ~3.5 GHz is about 110 GFLOP/s), so a size refused here is out of reach on any CPU —
  one task takes at least `FLOP / (CPUs · CPU_FLOPS)`: 56 s on one CPU at 12800×2, over the
  default 30 s call deadline (`SUBNET_CALL_TIMEOUT`).

With GPUs the task runs on the device: a GPU's memory must hold the three matrices (when its size
is known); host memory and CPU time are the env's own business.
"""

from __future__ import annotations

from typing import Sequence

GIB = 1 << 30
SERVER_BYTES = 256 << 20
CPU_FLOPS = 150e9


def task_bytes(n: int) -> int:
    return 3 * 4 * n * n


def task_flop(n: int, depth: int) -> float:
    return 2.0 * depth * n**3


def docker_bytes(size: str) -> int:
    """A docker size string (`512m`, `2g`, `1073741824`) in bytes."""
    size = size.strip().lower()
    units = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)


def cpu_fit_refusal(n: int, depth: int, memory: str, cpus: float, call_timeout: float,
                    smaller: str = "SUBNET_N=256 SUBNET_DEPTH=4") -> str:
    """Why n × depth cannot run in a GPU-less Actor with these limits, or "" when it can."""
    problems = []
    need = task_bytes(n) + SERVER_BYTES
    if need > docker_bytes(memory):
        problems.append(f"it needs {need / GIB:.2f} GiB (3 n×n float32 matrices + {SERVER_BYTES >> 20} MiB for its "
                        f"server), SUBNET_DOCKER_MEMORY is {memory}")
    seconds = task_flop(n, depth) / (cpus * CPU_FLOPS)
    if seconds > call_timeout:
        problems.append(f"{task_flop(n, depth) / 1e12:.2f} TFLOP per task takes ≥ {seconds:.0f} s on {cpus:g} CPU "
                        f"(SUBNET_DOCKER_CPUS), the call deadline is {call_timeout:g} s")
    if not problems:
        return ""
    return (f"n={n} × depth {depth} cannot run in a Docker Actor without a GPU: {'; '.join(problems)}. "
            f"Set {smaller} (the dry-run size) to try the loop on a CPU, or use a host with NVIDIA GPUs "
            f"(docs/validator.md)")


def gpu_fit_refusal(n: int, gpu_memory_gib: Sequence[float | None], smaller: str = "SUBNET_N") -> str:
    """Why no GPU can hold an n-sized task, or "" (a GPU of unknown size is given the benefit)."""
    sizes = [m for m in gpu_memory_gib if m is not None]
    if not sizes or len(sizes) < len(gpu_memory_gib) or max(sizes) * GIB >= task_bytes(n):
        return ""
    return (f"n={n} needs {task_bytes(n) / GIB:.2f} GiB of GPU memory (3 n×n float32 matrices) and the "
            f"largest GPU here has {max(sizes):.1f} GiB: set a smaller {smaller}")
