"""`subnet dry-run --rounds N` spread report, `--help` defaults, and which default envs run."""

from __future__ import annotations

import subprocess
import sys

from envs_factory import make_env
from subnet.config import Settings
from subnet.dryrun.run import requirement_names, runnable_defaults
from test_dry_run import run_dry_run


def test_rounds_report_each_envs_spread(tmp_path):
    honest, slow = make_env(tmp_path, "honest"), make_env(tmp_path, "slow")
    data = run_dry_run("--env", str(honest), "--env", str(slow), "--rounds", "3", "--tasks", "2", "--n", "64")
    assert len(data["rounds"]) == 3
    assert all(len(r["miners"]) == 2 for r in data["rounds"])
    spread = {row["env"]: row for row in data["spread"]}
    assert set(spread) == {"honest", "slow"}
    for env, row in spread.items():
        p50s = [m["latency_ms_p50"] for r in data["rounds"] for m in r["miners"] if m["env"] == env]
        assert row["rounds"] == 3
        assert row["p50_ms_min"] == min(p50s) and row["p50_ms_max"] == max(p50s)
        assert row["p50_ms_min"] <= row["p50_ms_median"] <= row["p50_ms_max"]
        assert row["score_min"] <= row["score_max"] and row["accuracy_min"] == 1.0
    assert spread["slow"]["p50_ms_min"] > 600  # it sleeps 0.6 s per call


def test_help_shows_every_default_the_validator_uses():
    done = subprocess.run([sys.executable, "-m", "subnet", "dry-run", "--help"], capture_output=True, text=True,
                          env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    defaults = Settings.model_fields
    for option, expected in [("--tasks", f"default {defaults['tasks'].default}"),
                             ("--concurrency", f"default {defaults['concurrency'].default}"),
                             ("--n", f"default {defaults['dry_run_n'].default}; the validator runs {defaults['n'].default}"),
                             ("--depth", f"default {defaults['dry_run_depth'].default}; the validator runs {defaults['depth'].default}"),
                             ("--timeout", f"default {defaults['call_timeout'].default}"),
                             ("--rounds", "default: 1")]:
        assert option in text and expected in text, (option, expected)


def test_default_envs_needing_what_is_missing_are_skipped_with_a_note(tmp_path):
    plain = make_env(tmp_path, "honest")
    needy = make_env(tmp_path, "honest", name="needs-torch")
    (needy / "requirements.txt").write_text("# a GPU env\ntorch>=2.3  # from PyPI\nnot-a-real-package-xyz==1.0\n")
    assert requirement_names(needy) == ["torch", "not-a-real-package-xyz"]
    keep, notes = runnable_defaults([plain, needy], "process")
    assert keep == [plain]
    assert len(notes) == 1 and "needs-torch" in notes[0] and "not-a-real-package-xyz" in notes[0]
    assert f"--env {needy}" in notes[0]
    keep, notes = runnable_defaults([plain, needy], "docker")
    assert keep == [plain] and "installs torch" in notes[0]
