"""`subnet dry-run --mode process --json` end to end, through the real CLI in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from envs_factory import make_broken_env, make_env

FAULTY = {
    "raises": "error",
    "non_dict": "bad_output",
    "self_scored": "bad_output",
    "wrong": "wrong_answer",
    "partial": "wrong_answer",
    "one_zero_row": "wrong_answer",
    "noisy": "wrong_answer",
    "skipped_layer": "wrong_answer",
    "short": "bad_output",
    "strings": "bad_output",
    "nan": "bad_output",  # the server encodes NaN as null
    "huge": "oversized",
    "hangs": "timeout",
    "relayed": "wrong_answer",  # another miner's X: per-miner inputs make relaying fail
}
BROKEN = {
    "no_env_py": "invalid_env",
    "no_actor": "invalid_env",
    "syntax_error": "invalid_env",
    "import_error": "start_failed",
    "exits_at_import": "start_failed",
}


def run_dry_run(*args: str, timeout: float = 240, mode: str = "process") -> dict:
    cmd = [sys.executable, "-m", "subnet", "dry-run", "--mode", mode, "--json", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def big_round(tmp_path_factory):
    root = tmp_path_factory.mktemp("envs")
    envs = [make_env(root, "honest"), make_env(root, "async_honest"), make_env(root, "slow")]
    envs += [make_env(root, kind) for kind in FAULTY]
    envs += [make_broken_env(root, problem) for problem in BROKEN]
    args = [a for env in envs for a in ("--env", str(env))]
    started = time.monotonic()
    report = run_dry_run(*args, "--tasks", "6", "--timeout", "3", "--n", "128", "--depth", "3")
    return report, time.monotonic() - started


def by_env(report: dict) -> dict[str, dict]:
    return {m["env"]: m for m in report["miners"]}


def test_report_shape(big_round):
    report, _ = big_round
    assert report["mode"] == "process"
    assert report["challenge"] == "matrix-chain"
    assert report["tasks_per_miner"] == 6
    assert len(report["miners"]) == 3 + len(FAULTY) + len(BROKEN)
    keys = {"uid", "hotkey", "env", "tasks", "verified", "accuracy", "latency_ms_p50", "score", "weight", "faults"}
    for miner in report["miners"]:
        assert keys <= miner.keys()
    assert abs(sum(report["weights"].values()) - 1.0) < 1e-5


def test_honest_envs_are_paid_and_fast_beats_slow(big_round):
    miners = by_env(big_round[0])
    for name in ("honest", "async_honest", "slow"):
        assert miners[name]["verified"] == 6 and miners[name]["accuracy"] == 1.0, miners[name]
        assert miners[name]["weight"] > 0
        assert miners[name]["faults"] == {}
    # `slow` sleeps 0.6 s on top of the same work as `honest`: it must cost more and earn less.
    assert miners["slow"]["latency_ms_p50"] > miners["honest"]["latency_ms_p50"]
    assert miners["slow"]["weight"] < miners["honest"]["weight"]


@pytest.mark.parametrize("kind", sorted({**FAULTY, **BROKEN}))
def test_each_faulty_env_is_named_and_unpaid(big_round, kind):
    report, _ = big_round
    miner = by_env(report)[kind]
    expected = {**FAULTY, **BROKEN}[kind]
    assert miner["weight"] == 0 and miner["score"] == 0, miner
    assert str(miner["uid"]) not in report["weights"]
    assert miner["verified"] == 0
    assert miner["faults"].get(expected) == miner["tasks"] == 6, miner
    assert miner["reason"], "a fault must come with a one-line reason"
    assert "\n" not in miner["reason"]


def test_round_is_bounded_even_with_a_hanging_env(big_round):
    _, elapsed = big_round
    # 21 miners on 2 cores, one of which never answers: one 3 s deadline, not one per task.
    assert elapsed < 120


def test_defaults_pay_the_reference_envs(torch):
    """Every folder in envs/ (numpy and torch; CI installs torch) is paid on the defaults."""
    report = run_dry_run()
    # One round per challenge the envs declare: matrix-chain/2, and prose-ledger/1 for the LLM env.
    miners = [m for r in report["rounds"] for m in r["miners"]]
    assert {m["env"] for m in miners} == {"matrix-chain-numpy", "matrix-chain-torch", "prose-ledger-openai"}
    for miner in miners:
        assert miner["accuracy"] == 1.0 and miner["weight"] > 0, miner


def test_a_copied_env_earns_nothing_and_is_named(tmp_path):
    original = make_env(tmp_path, "honest", name="original")
    copied = make_env(tmp_path / "elsewhere", "honest", name="original")  # same bytes, same digest
    report = run_dry_run("--env", str(original), "--env", str(copied), "--tasks", "2")
    first, second = sorted(report["miners"], key=lambda m: m["uid"])
    assert first["digest"] == second["digest"]
    assert first["weight"] == 1.0 and first["verified"] == 2
    assert second["weight"] == 0 and second["faults"] == {"copy": 2}
    assert "first committed by " + first["hotkey"] in second["reason"]


def test_commitments_are_parsed_on_the_production_path():
    rounds = run_dry_run("--tasks", "1")["rounds"]  # the default envs declare two challenges
    assert all(report["rejected"] == [] for report in rounds)
    assert all(m["digest"].startswith("sha256:") and len(m["digest"]) == 71 for r in rounds for m in r["miners"])
