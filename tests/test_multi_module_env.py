"""Multi-module envs in the process runtime, and start failures that name the env's own exception."""

from __future__ import annotations

import sys

from envs_factory import make_broken_env, make_multi_module_env
from subnet.miner.wrapper import SERVE_PY
from subnet.runtime import env_loader
from test_dry_run import by_env, run_dry_run


def test_an_env_importing_a_sibling_and_a_subpackage_is_paid(tmp_path):
    env = make_multi_module_env(tmp_path)
    report = run_dry_run("--env", str(env), "--tasks", "2", "--n", "64", "--depth", "2")
    miner = by_env(report)["multi-module"]
    assert miner["verified"] == 2 and miner["weight"] == 1.0, miner


def test_start_failures_carry_the_envs_exception_file_and_line(tmp_path):
    broken = make_multi_module_env(tmp_path, broken_sibling=True)
    missing = make_broken_env(tmp_path, "import_error")
    report = run_dry_run("--env", str(broken), "--env", str(missing), "--tasks", "1")
    miners = by_env(report)
    assert miners["broken-sibling"]["faults"] == {"start_failed": 1}
    assert miners["broken-sibling"]["reason"].endswith(
        "ImportError: helper cannot find its kernel library (at helper.py:2)"), miners["broken-sibling"]
    assert miners["import_error"]["reason"].endswith(
        "ModuleNotFoundError: No module named 'not_a_real_module_xyz' (at env.py:2)"), miners["import_error"]


def test_loader_reports_a_syntax_error_in_a_subpackage(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "modules", dict(sys.modules))  # helper, kernels: gone after the test
    env = make_multi_module_env(tmp_path)
    (env / "kernels" / "chain.py").write_text("def run_chain(:\n")
    try:
        env_loader.load_env(str(env / "env.py"))
    except env_loader.EnvLoadFailed as exc:
        assert str(exc).startswith("SyntaxError: ") and str(exc).endswith("(at kernels/chain.py:1)"), exc
    else:
        raise AssertionError("a syntax error in a subpackage must fail the load")


def test_every_actor_image_loads_envs_with_the_same_loader():
    import inspect

    assert inspect.getsource(env_loader) in SERVE_PY
    assert 'load_or_exit("/app/env.py")' in SERVE_PY
    compile(SERVE_PY, "serve.py", "exec")
