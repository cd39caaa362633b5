"""Measure matrix-chain/2's GPU claims on the GPU at hand; print one JSON object.

    python scripts/gpu_check.py              # one NVIDIA GPU: production size 12800×2, well under 5 minutes
    python scripts/gpu_check.py --cpu-smoke  # anywhere: small sizes on the CPU, GPUs hidden

What it measures (docs/challenge.md §5 states the claims as arithmetic; this puts numbers on them):
1. bit identity of the inputs: the validator's numpy generator (`counter_rng.fill_block`, CPU) vs the
   torch reference env's generator on the device — sampled rows of X, W1..Wdepth at the production n,
   and whole matrices at n = 1024;
2. latency of the torch env's `Actor.evaluate` at the production size, in this process (p50 of 5 after
   2 warm-ups);
3. achieved TFLOPS against the device's published FP32 peak;
4. the generation share of a task (input generation ÷ task time) and the GPU share of the latency;
5. whether the validator's own CPU verification (`MatrixChain.receive` + `verify`) accepts every
   answer the GPU gave, and its worst error against the tolerance on extra rows.

It needs only torch and numpy: the validator code it loads (`subnet.challenges`) imports nothing else
(tests/test_gpu_check.py runs it with pydantic, httpx, affinetes, bittensor and docker blocked). When
torch sees no CUDA device it says so (`"gpu_found": false`) and runs the CPU smoke sizes. Exit status 1
when the inputs differ or verification rejects an answer; the speed claims are reported, not enforced.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import re
import secrets
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the GPU box gets a copy of the tree, not an installed package

import numpy as np  # noqa: E402

from subnet.challenges.counter_rng import fill_block, stream_key  # noqa: E402
from subnet.challenges.matrix_chain import MatrixChain, reference_row_sums, tolerance  # noqa: E402

NETWORK_RTT_S = 0.050  # the round trip docs/challenge.md §5 assumes on top of the compute
WARMUPS, REPEATS = 2, 5
MARGIN_ROWS = 8  # extra rows per answer for the error margin (the validator itself checks k = 2)

# Published FP32 (non-tensor) peaks in TFLOPS, from NVIDIA's datasheets: H200 datasheet (H200 SXM 67,
# H200 NVL 60); H100 datasheet (SXM 67, PCIe 51, NVL 60); A100 datasheet (19.5); V100 datasheet
# (PCIe 14, SXM2 15.7, V100S 16.4); L40S datasheet (91.6); L4 datasheet (30.3); A10 datasheet (31.2);
# T4 datasheet (8.1); NVIDIA RTX A4000 datasheet (19.2); NVIDIA RTX A6000 datasheet (38.7). Patterns
# match torch.cuda.get_device_name() (e.g. "NVIDIA H200", "NVIDIA H100 80GB HBM3" = SXM,
# "Tesla V100-SXM2-16GB"); the first match wins, so specific names come before their prefixes.
FP32_PEAK_TFLOPS: list[tuple[str, str, float]] = [
    (r"H200 NVL", "H200 NVL", 60.0),
    (r"H200", "H200 SXM", 67.0),
    (r"H100 PCIe", "H100 PCIe", 51.0),
    (r"H100 NVL", "H100 NVL", 60.0),
    (r"H100", "H100 SXM", 67.0),
    (r"A100", "A100", 19.5),
    (r"V100S", "V100S PCIe", 16.4),
    (r"V100-SXM2", "V100 SXM2", 15.7),
    (r"V100-PCIE", "V100 PCIe", 14.0),
    (r"L40S", "L40S", 91.6),
    (r"\bL4\b", "L4", 30.3),
    (r"\bA10\b", "A10", 31.2),
    (r"\bT4\b", "T4", 8.1),
    (r"RTX A4000", "RTX A4000", 19.2),
    (r"RTX A6000", "RTX A6000", 38.7),
]


@dataclass(frozen=True)
class Sizes:
    n: int  # the task size timed and verified
    depth: int
    sampled_n: int  # bit identity: sampled rows at this n
    full_n: int  # bit identity: whole matrices at this n
    sampled_rows: int = 16


GPU_SIZES = Sizes(n=12800, depth=2, sampled_n=12800, full_n=1024)
CPU_SMOKE_SIZES = Sizes(n=384, depth=2, sampled_n=2048, full_n=256)


def published_fp32_peak(device_name: str) -> tuple[str, float | None]:
    for pattern, label, tflops in FP32_PEAK_TFLOPS:
        if re.search(pattern, device_name, re.IGNORECASE):
            return label, tflops
    return "unknown", None


def load_torch_env() -> Any:
    """The reference torch env, loaded from its file exactly as an Actor server loads `env.py`."""
    path = REPO / "envs" / "matrix-chain-torch" / "env.py"
    spec = importlib.util.spec_from_file_location("matrix_chain_torch_env", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def task_matrices(task_key: bytes, miner_key: bytes, depth: int) -> list[tuple[bytes, str]]:
    """(stream key, label) of X and W1..Wdepth, as docs/challenge.md §2 names them."""
    return [(miner_key, "X")] + [(task_key, f"W{layer}") for layer in range(1, depth + 1)]


def timed(fn: Callable[[], Any], sync: Callable[[], None]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    sync()
    return time.perf_counter() - started, result


def p50_ms(samples_s: list[float]) -> float:
    return statistics.median(samples_s) * 1e3


# --- 1. bit identity ---------------------------------------------------------------------------------


def compare_rows(gen: Any, key: bytes, label: str, n: int, rows: np.ndarray) -> int:
    """Number of elements whose float32 bits differ between the device generator and the validator's."""
    on_device = gen.matrix(key, label, n)
    got = on_device[torch_index(rows, on_device.device)].cpu().numpy()
    del on_device
    expected = fill_block(stream_key(key, label), n, rows, np.arange(n), np.empty((len(rows), n), np.float32))
    return int(np.count_nonzero(got.view(np.uint32) != expected.view(np.uint32)))


def torch_index(rows: np.ndarray, device: Any) -> Any:
    import torch

    return torch.as_tensor(rows, dtype=torch.int64, device=device)


def bit_identity(gen: Any, task_key: bytes, miner_key: bytes, sizes: Sizes) -> dict:
    labels = task_matrices(task_key, miner_key, sizes.depth)
    n = sizes.sampled_n
    rows = np.array(sorted({0, n - 1} | set(secrets.SystemRandom().sample(range(n), sizes.sampled_rows - 2))))
    sampled = sum(compare_rows(gen, key, label, n, rows) for key, label in labels)
    every = np.arange(sizes.full_n)
    full = sum(compare_rows(gen, key, label, sizes.full_n, every) for key, label in labels)
    return {
        "compared": f"validator numpy (counter_rng.fill_block, CPU) vs torch env Generator on {gen.device}",
        "matrices": [label for _, label in labels],
        "sampled_rows": {"n": n, "rows": rows.tolist(), "mismatched_elements": sampled, "identical": sampled == 0},
        "full_matrices": {"n": sizes.full_n, "mismatched_elements": full, "identical": full == 0},
        "identical": sampled == 0 and full == 0,
    }


# --- 2-4. latency, throughput, generation share -----------------------------------------------------------


def run_actor(actor: Any, challenge: MatrixChain, task: Any, sync: Callable[[], None]) -> tuple[list, list[float]]:
    """(hotkey, answer) for every call, and the timed calls' seconds (the warm-ups are answered too)."""
    answers, samples = [], []
    for i in range(WARMUPS + REPEATS):
        hotkey = f"gpu-check-{i}"
        seconds, answer = timed(lambda: actor.evaluate(task_id=task.index, **challenge.payload(task, hotkey)), sync)
        answers.append((hotkey, answer))
        if i >= WARMUPS:
            samples.append(seconds)
    return answers, samples


def stage_times(env: Any, gen: Any, task_key: bytes, miner_key: bytes, sizes: Sizes, sync: Callable[[], None]) -> tuple[list, list]:
    """Seconds to generate a task's inputs on the device, and to run the chain on inputs already there."""
    import torch

    labels = task_matrices(task_key, miner_key, sizes.depth)
    scale = env.float32(env.GAIN * math.sqrt(3.0 / sizes.n))

    def generate() -> list:
        return [gen.matrix(key, label, sizes.n) for key, label in labels]

    def chain(mats: list) -> Any:
        y = mats[0]
        for w in mats[1:]:
            y = torch.tanh((y @ w) * scale)
        return y.sum(dim=1)

    generation, compute = [], []
    with torch.inference_mode():
        for i in range(WARMUPS + REPEATS):
            gen_s, mats = timed(generate, sync)
            chain_s, _ = timed(lambda: chain(mats), sync)
            del mats
            if i >= WARMUPS:
                generation.append(gen_s)
                compute.append(chain_s)
    return generation, compute


def json_encode_ms(answer: dict) -> float:
    samples = []
    for _ in range(3):
        started = time.perf_counter()
        json.dumps(answer)
        samples.append(time.perf_counter() - started)
    return p50_ms(samples)


# --- 5. the validator's verification ------------------------------------------------------------------


def verification(challenge: MatrixChain, task: Any, answers: list) -> dict:
    """The validator's own receive + verify on every answer, then the worst error on extra rows."""
    cpu0 = time.process_time()
    claims = [challenge.receive(task, hotkey, answer) for hotkey, answer in answers]
    verdicts = challenge.verify(task, claims)
    cpu_s = time.process_time() - cpu0
    accepted = sum(v.ok for v in verdicts)
    return {
        "code": "subnet.challenges.matrix_chain.MatrixChain.receive + verify (the validator's own)",
        "answers": len(answers),
        "sampled_rows_per_answer": challenge.sampled_rows,
        "accepted": accepted,
        "all_accepted": accepted == len(answers),
        "rejections": [v.reason for v in verdicts if not v.ok],
        "validator_cpu_s": cpu_s,
        **error_margin(challenge, task, answers),
    }


def error_margin(challenge: MatrixChain, task: Any, answers: list) -> dict:
    n, depth = challenge.n, challenge.depth
    task_key = bytes.fromhex(task.payload["task_key"])
    picks = [np.array(sorted(secrets.SystemRandom().sample(range(n), min(MARGIN_ROWS, n)))) for _ in answers]
    keys = [bytes.fromhex(challenge.payload(task, hotkey)["miner_key"]) for hotkey, _ in answers]
    expected = reference_row_sums(task_key, n, depth, list(zip(keys, picks)))
    claimed = np.concatenate([np.asarray(answer["row_sums"], np.float64)[rows] for (_, answer), rows in zip(answers, picks)])
    error = np.abs(claimed - expected)
    return {
        "margin_rows_checked": int(len(error)),
        "max_error_over_sqrt_n": float(error.max() / math.sqrt(n)),
        "max_error_over_tolerance": float((error / tolerance(n, expected)).max()),
    }


# --- assembling the report ----------------------------------------------------------------------------


def device_facts(torch: Any, device: Any) -> dict:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    label, peak = published_fp32_peak(name) if device.type == "cuda" else ("unknown", None)
    return {
        "type": device.type,
        "name": name,
        "fp32_peak_entry": label,
        "fp32_peak_tflops": peak if peak is not None else "unknown",
        "torch": torch.__version__,
        "torch_cuda_build": torch.version.cuda,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def rounded(value: Any) -> Any:
    """Four significant digits: the report is read by people, and timing noise is larger than that."""
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value


def speed_report(sizes: Sizes, evaluate_s: list, generation_s: list, chain_s: list, peak: float | None, on_gpu: bool) -> dict:
    flop = 2 * sizes.depth * sizes.n**3  # an int: exact in the report
    evaluate, generate, chain = (statistics.median(s) for s in (evaluate_s, generation_s, chain_s))
    device_s = generate + chain
    share_with_rtt = device_s / (evaluate + NETWORK_RTT_S)
    tflops_e2e, tflops_chain = flop / evaluate / 1e12, flop / chain / 1e12
    return {
        "throughput": {
            "task_flop": flop,
            "tflops_end_to_end": tflops_e2e,
            "tflops_chain": tflops_chain,
            "share_of_fp32_peak_end_to_end": tflops_e2e / peak if peak else "unknown",
            "share_of_fp32_peak_chain": tflops_chain / peak if peak else "unknown",
        },
        "generation": {
            "what": "X and W1..Wdepth generated on the device by the env's Generator, synchronised",
            "p50_ms": generate * 1e3, "samples_ms": [s * 1e3 for s in generation_s],
            "chain_p50_ms": chain * 1e3,
            "share_of_task": generate / evaluate,
        },
        "device_share": {
            "what": "generation + chain (device time) ÷ the evaluate p50, and ÷ (evaluate p50 + 50 ms round trip)",
            "device_ms": device_s * 1e3,
            "of_evaluate": device_s / evaluate,
            "with_50ms_rtt": share_with_rtt,
        },
        "claims": {
            "checked": on_gpu,
            "generation_under_1pct": generate / evaluate < 0.01 if on_gpu else None,
            "gpu_share_at_least_80pct_with_50ms_rtt": share_with_rtt >= 0.80 if on_gpu else None,
        },
    }


def latency_report(sizes: Sizes, samples_s: list, encode_ms: float) -> dict:
    return {
        "n": sizes.n, "depth": sizes.depth,
        "p50_ms": p50_ms(samples_s), "samples_ms": [s * 1e3 for s in samples_s], "warmups": WARMUPS,
        "includes": "the torch env's Actor.evaluate in this process: reading the payload, generating X and "
                    "W1..Wdepth on the device, the float32 chain, the row sums, the copy to the host and the "
                    "Python list of n floats (all the env does per call)",
        "excludes": "the Actor server (affinetes templates/http_server.py runs a sync evaluate in a worker thread "
                    "and returns it in a pydantic response model), the JSON encoding and the network round trip",
        "answer_json_encode_ms": encode_ms,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="hide GPUs and run small sizes on the CPU")
    return parser.parse_args()


def check(torch: Any, cpu_smoke: bool) -> dict:
    """Every measurement, on one fresh task of the size the device calls for."""
    started = time.perf_counter()
    gpu_found = torch.cuda.is_available()
    sizes = GPU_SIZES if gpu_found else CPU_SMOKE_SIZES
    import_s, env = timed(load_torch_env, lambda: None)  # on CUDA this includes compiling the generator
    gen = env.GENERATOR
    sync = torch.cuda.synchronize if gen.device.type == "cuda" else (lambda: None)
    facts = device_facts(torch, gen.device)
    peak = facts["fp32_peak_tflops"] if isinstance(facts["fp32_peak_tflops"], float) else None

    challenge = MatrixChain(n=sizes.n, depth=sizes.depth)
    task = challenge.make_tasks(os.urandom(32), 1)[0]
    task_key = bytes.fromhex(task.payload["task_key"])
    miner_key = bytes.fromhex(challenge.payload(task, "gpu-check-0")["miner_key"])

    identity = bit_identity(gen, task_key, miner_key, sizes)
    answers, evaluate_s = run_actor(env.Actor(), challenge, task, sync)
    generation_s, chain_s = stage_times(env, gen, task_key, miner_key, sizes, sync)
    verified = verification(challenge, task, answers)
    return {
        "gpu_found": gpu_found,
        "mode": "gpu" if gpu_found else "cpu-smoke",
        "note": note(gpu_found, cpu_smoke),
        "device": facts,
        "generator_kernel": "fused (torch.compile)" if gen.values is not env.values_from_counters else "op by op (eager)",
        "env_import_s": import_s,
        "bit_identity": identity,
        "latency": latency_report(sizes, evaluate_s, json_encode_ms(answers[-1][1])),
        **speed_report(sizes, evaluate_s, generation_s, chain_s, peak, gpu_found),
        "verification": verified,
        "peak_gpu_memory_gib_whole_run": torch.cuda.max_memory_allocated() / 2**30 if gpu_found else None,
        "ok": identity["identical"] and verified["all_accepted"],
        "elapsed_s": time.perf_counter() - started,
    }


def main() -> int:
    args = parse_args()
    if args.cpu_smoke:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch loads: the env then builds as on a CPU-only host
    import torch

    report = check(torch, args.cpu_smoke)
    print(json.dumps(rounded(report), indent=2))
    return 0 if report["ok"] else 1


def note(gpu_found: bool, cpu_smoke: bool) -> str:
    if gpu_found:
        return "CUDA GPU found: production size; bit identity is CPU (numpy) vs CUDA (torch)"
    why = "--cpu-smoke hid the GPUs" if cpu_smoke else "NO GPU FOUND (torch.cuda.is_available() is False)"
    return (f"{why}: ran the CPU smoke sizes on the CPU; bit identity is CPU (numpy) vs CPU (torch); "
            "the speed numbers say nothing about the GPU claims")


if __name__ == "__main__":
    sys.exit(main())
