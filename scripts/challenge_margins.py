"""Measure matrix-chain/2's error margins, the numbers its tolerance is set from.

For each size: row-sum error against a float64 reference of honest float32 work (numpy BLAS, torch
when installed, and the validator's own streamed float32 pass), of TF32-like work (every matmul's
inputs rounded to a 10-bit mantissa), of a skipped layer and of partial work (the last eighth of
every inner product skipped), in units of √n (the tolerance's absolute term); plus the activation
scale per layer. Usage:

    python scripts/challenge_margins.py [--sizes 256x4,1024x4,2048x2]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from subnet.challenges import matrix_chain as mc
from subnet.challenges.counter_rng import numpy_matrix


def tf32(a: np.ndarray) -> np.ndarray:
    """Round float32 to TF32's 10-bit mantissa (round to nearest), as Ampere tensor cores do."""
    bits = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    return ((bits + np.uint32(1 << 12)) & ~np.uint32((1 << 13) - 1)).view(np.float32)


def chain(x, weights, scale, dtype=np.float32, rounding=None, inner=None, layers=None):
    """Row sums of the chain; `rounding` maps matmul inputs, `inner` keeps that many of n terms."""
    y = x.astype(dtype)
    stds = []
    for w in weights[: layers if layers is not None else len(weights)]:
        a, b = (rounding(y), rounding(w)) if rounding else (y, w.astype(dtype))
        if inner is not None:
            a, b = a[:, :inner], b[:inner]
        y = np.tanh((a @ b) * dtype(scale))
        stds.append(float(y.std()))
    return y.sum(axis=1, dtype=np.float64), stds


def torch_chain(x, weights, scale):
    try:
        import torch
    except ImportError:
        return None
    torch.backends.cuda.matmul.allow_tf32 = False
    y = torch.from_numpy(x)
    for w in weights:
        y = torch.tanh((y @ torch.from_numpy(w)) * float(scale))
    return y.sum(dim=1, dtype=torch.float64).numpy()


def measure(n: int, depth: int, rows: int = 64) -> dict:
    task_key, miner_key = b"\x01" * 32, b"\x02" * 32
    x = numpy_matrix(miner_key, "X", n)
    weights = [numpy_matrix(task_key, f"W{l}", n) for l in range(1, depth + 1)]
    scale = mc.layer_scale(n)
    exact, _ = chain(x, weights, scale, dtype=np.float64)
    honest, stds = chain(x, weights, scale)
    sample = np.arange(min(rows, n))
    validator = mc.reference_row_sums(task_key, n, depth, [(miner_key, sample)])
    cases = {
        "honest numpy float32": honest,
        "validator streamed float32": np.concatenate([validator, exact[len(sample):]]),
        "TF32-like (10-bit mantissa)": chain(x, weights, scale, rounding=tf32)[0],
        "skipped layer": chain(x, weights, scale, layers=depth - 1)[0],
        "partial (7/8 of each inner product)": chain(x, weights, scale, inner=n * 7 // 8)[0],
    }
    torch_sums = torch_chain(x, weights, scale)
    if torch_sums is not None:
        cases["honest torch float32"] = torch_sums
    errors = {}
    for name, sums in cases.items():
        err = np.abs(sums - exact)
        errors[name] = {"max_over_sqrt_n": float(err.max() / math.sqrt(n)),
                        "min_over_sqrt_n": float(err.min() / math.sqrt(n)),
                        "rejected_rows": float(np.mean(err > mc.tolerance(n, exact)))}
    return {"n": n, "depth": depth, "layer_std": stds, "row_sum_std": float(exact.std()), "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="256x4,1024x4,2048x2", help="comma-separated NxDEPTH")
    args = parser.parse_args()
    print(f"tolerance: |error| <= {mc.ABS_TOLERANCE_PER_SQRT_N:g}·√n + {mc.REL_TOLERANCE:g}·|expected|; gain {mc.GAIN}")
    for size in args.sizes.split(","):
        n, depth = (int(v) for v in size.lower().split("x"))
        result = measure(n, depth)
        stds = ", ".join(f"{s:.3f}" for s in result["layer_std"])
        print(f"\nn={n} depth={depth}: activation std per layer [{stds}], row-sum std {result['row_sum_std']:.2f}")
        print(f"  {'case':38s} {'max err/√n':>11s} {'min err/√n':>11s} {'rows rejected':>14s}")
        for name, e in result["errors"].items():
            print(f"  {name:38s} {e['max_over_sqrt_n']:11.2e} {e['min_over_sqrt_n']:11.2e} {e['rejected_rows']:14.1%}")


if __name__ == "__main__":
    main()
