"""`subnet dry-run --mode vast` through the real CLI: the Vast runtime against the Vast twin pays the
honest env only, on boxes within the policy and under the cap, and leaves no instance behind."""

from __future__ import annotations

import json
import subprocess
import sys

from envs_factory import make_broken_env, make_env


def test_dry_run_in_vast_mode_pays_honest_envs_only(tmp_path):
    root = tmp_path / "envs"
    envs = [make_env(root, "honest"), make_env(root, "wrong"), make_env(root, "raises"),
            make_broken_env(root, "exits_at_import")]
    args = [a for e in envs for a in ("--env", str(e))]
    done = subprocess.run([sys.executable, "-m", "subnet", "dry-run", "--mode", "vast", "--json", *args, "--tasks", "3",
                           "--n", "64", "--depth", "2"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    miners = {m["env"]: m for m in report["miners"]}
    assert report["mode"] == "vast"
    assert miners["honest"]["verified"] == 3 and miners["honest"]["weight"] == 1.0
    assert miners["wrong"]["faults"] == {"wrong_answer": 3} and miners["wrong"]["weight"] == 0
    assert miners["raises"]["faults"] == {"error": 3} and miners["raises"]["weight"] == 0
    assert miners["exits_at_import"]["faults"] == {"start_failed": 3} and miners["exits_at_import"]["weight"] == 0
    assert "exited at start" in miners["exits_at_import"]["reason"]
    rented = report["vast"]
    assert rented["deployments_created"] == rented["deployments_deleted"] == 4 and rented["deployments_left"] == 0
    assert rented["hourly_prices"] and max(rented["hourly_prices"]) <= rented["cap"]  # nothing above the cap
    assert rented["hourly_prices"][0] == 0.09  # the cheapest allowed: the V100 bid


def test_dry_run_in_vast_mode_prints_what_it_rented(tmp_path):
    env = make_env(tmp_path / "envs", "honest")
    done = subprocess.run([sys.executable, "-m", "subnet", "dry-run", "--mode", "vast", "--env", str(env),
                           "--tasks", "2", "--n", "64", "--depth", "2"], capture_output=True, text=True, timeout=240,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(ln for ln in done.stdout.splitlines() if ln.startswith("vast:"))
    assert "instances 1 created, 1 deleted, 0 left" in line, line
