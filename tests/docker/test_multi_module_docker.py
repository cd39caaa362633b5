"""A multi-module env in a built Actor image: the env folder is a package root in Docker mode too,
and a start failure names the env's own exception, file and line (from the container's last line)."""

from __future__ import annotations

import pytest

from envs_factory import make_multi_module_env
from test_dry_run import by_env, run_dry_run

pytestmark = pytest.mark.docker


def test_multi_module_env_is_paid_and_a_broken_one_says_why_in_docker(docker_client, base_image, tmp_path):
    # (Leaks are checked by test_dry_run_docker.py; a check here would see other runs' containers.)
    good = make_multi_module_env(tmp_path)
    broken = make_multi_module_env(tmp_path, broken_sibling=True)
    report = run_dry_run("--env", str(good), "--env", str(broken), "--tasks", "2", "--n", "64", "--depth", "2",
                         "--timeout", "10", mode="docker", timeout=900)
    miners = by_env(report)
    assert report["mode"] == "docker"
    assert miners["multi-module"]["verified"] == 2 and miners["multi-module"]["weight"] == 1.0, miners["multi-module"]
    assert miners["broken-sibling"]["faults"] == {"start_failed": 2}, miners["broken-sibling"]
    assert "ImportError: helper cannot find its kernel library (at helper.py:2)" in miners["broken-sibling"]["reason"]
