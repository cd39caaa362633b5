"""scripts/gpu_check.py: runs with only torch and numpy, says plainly when no GPU was found, and on
the CPU reports bit-identical inputs and answers the validator's verification accepts."""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "gpu_check.py"


def only_torch_and_numpy(site: Path) -> Path:
    """A site directory of links to torch, numpy and what they require, and nothing else: what the GPU
    machine has installed (pydantic, httpx, affinetes, bittensor, docker and `subnet` are absent)."""
    site.mkdir()
    seen: set[str] = set()
    todo = ["torch", "numpy"]
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue  # an optional requirement this platform's wheel does not install
        todo += [re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0] for r in dist.requires or [] if "extra ==" not in r]
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
            if not (site / top).exists():
                (site / top).symlink_to(dist.locate_file(top))
    return site


def run_isolated(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """This interpreter without its site-packages (-S -s), seeing only `site`, from outside the repo."""
    env = {**os.environ, "PYTHONPATH": str(site), "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run([sys.executable, "-S", "-s", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_gpu_check_runs_on_torch_and_numpy_alone_and_says_no_gpu(torch, tmp_path):
    site = only_torch_and_numpy(tmp_path / "site")
    for absent in ("pydantic", "httpx", "affinetes", "bittensor", "docker", "subnet"):  # the isolation is real
        probe = run_isolated(site, tmp_path, "-c", f"import {absent}")
        assert "ModuleNotFoundError" in probe.stderr, absent

    done = run_isolated(site, tmp_path, str(SCRIPT))  # no flag: the automatic fallback (GPUs hidden)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)

    assert report["gpu_found"] is False and report["mode"] == "cpu-smoke"
    assert "NO GPU FOUND" in report["note"]
    assert report["device"]["type"] == "cpu" and report["device"]["fp32_peak_tflops"] == "unknown"
    identity = report["bit_identity"]
    assert identity["identical"] is True and identity["matrices"] == ["X", "W1", "W2"]
    assert identity["sampled_rows"]["mismatched_elements"] == 0 and identity["full_matrices"]["mismatched_elements"] == 0
    assert identity["sampled_rows"]["rows"][0] == 0 and identity["sampled_rows"]["rows"][-1] == identity["sampled_rows"]["n"] - 1

    latency = report["latency"]
    assert len(latency["samples_ms"]) == 5 and min(latency["samples_ms"]) <= latency["p50_ms"] <= max(latency["samples_ms"])
    assert report["throughput"]["task_flop"] == 2 * latency["depth"] * latency["n"] ** 3
    assert report["throughput"]["tflops_end_to_end"] > 0 and report["throughput"]["share_of_fp32_peak_chain"] == "unknown"
    generation, device = report["generation"], report["device_share"]  # the ratios are of the numbers shown
    assert generation["share_of_task"] == pytest.approx(generation["p50_ms"] / latency["p50_ms"], rel=2e-3)
    assert device["device_ms"] == pytest.approx(generation["p50_ms"] + generation["chain_p50_ms"], rel=2e-3)
    assert device["with_50ms_rtt"] == pytest.approx(device["device_ms"] / (latency["p50_ms"] + 50), rel=2e-3)
    assert report["claims"] == {"checked": False, "generation_under_1pct": None, "gpu_share_at_least_80pct_with_50ms_rtt": None}

    verification = report["verification"]
    assert verification["answers"] == 7 and verification["accepted"] == 7 and verification["all_accepted"] is True
    assert verification["rejections"] == [] and verification["sampled_rows_per_answer"] == 2
    assert verification["margin_rows_checked"] == 7 * 8 and 0 <= verification["max_error_over_tolerance"] < 1
    assert report["ok"] is True and report["peak_gpu_memory_gib_whole_run"] is None


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


@pytest.mark.parametrize(
    ("device_name", "entry", "tflops"),
    [
        ("NVIDIA H200", "H200 SXM", 67.0),
        ("NVIDIA H200 NVL", "H200 NVL", 60.0),
        ("NVIDIA H100 80GB HBM3", "H100 SXM", 67.0),
        ("NVIDIA H100 PCIe", "H100 PCIe", 51.0),
        ("NVIDIA A100-SXM4-80GB", "A100", 19.5),  # not the A10
        ("NVIDIA L40S", "L40S", 91.6),  # not the L4
        ("NVIDIA L4", "L4", 30.3),
        ("Tesla V100-SXM2-16GB", "V100 SXM2", 15.7),
        ("Tesla V100-PCIE-32GB", "V100 PCIe", 14.0),
        ("NVIDIA RTX A4000", "RTX A4000", 19.2),
        ("NVIDIA RTX A6000", "RTX A6000", 38.7),
        ("NVIDIA RTX 6000 Ada Generation", "unknown", None),
        ("NVIDIA GeForce RTX 4090", "unknown", None),
    ],
)
def test_published_fp32_peak_matches_the_device_name_or_says_unknown(gpu_check, device_name, entry, tflops):
    assert gpu_check.published_fp32_peak(device_name) == (entry, tflops)


def test_the_note_says_why_no_gpu_was_used(gpu_check):
    assert "NO GPU FOUND" in gpu_check.note(False, False)
    assert "--cpu-smoke hid the GPUs" in gpu_check.note(False, True)
    assert "CUDA (torch)" in gpu_check.note(True, False)
