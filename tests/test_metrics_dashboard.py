"""The operator's dashboard: a live /metrics passes `promtool check metrics` (Debian's
`prometheus` package), every metric the Grafana dashboard queries is one the validator exports,
and the compose file that runs validator + Prometheus + Grafana is valid (`docker-compose config`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from subnet.util import aio
from subnet.chain.devchain import DevChain
from subnet.config import Settings
from subnet.validator.observability import Metrics, MetricsServer, Observability
from subnet.twins.standin import EchoChallenge, StandInRuntime
from subnet.state.store import Store
from subnet.validator.service import Validator, plan_round

MONITORING = Path(__file__).resolve().parents[1] / "scripts" / "monitoring"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "subnet-validator.json"
HANGS = f"ghcr.io/b/env@sha256:{2:064x}"


@pytest.fixture(scope="module")
def live_metrics(tmp_path_factory) -> str:
    """/metrics of a server that saw a round with a verified miner and a hanging one (faults)."""
    tmp = tmp_path_factory.mktemp("metrics")
    chain = DevChain(tmp / "devchain.sqlite", hotkey="v")
    chain.register(1, "v", validator_permit=True)
    for name, ref in (("alice", f"ghcr.io/a/env@sha256:{1:064x}"), ("bob", HANGS)):
        chain.register(1, name)
        chain.as_hotkey(name).commit(1, ref.encode())
    store = Store(tmp / "subnet.sqlite")
    metrics = Metrics()
    observer = Observability(metrics, MetricsServer(metrics, store.path, "127.0.0.1", 0))
    runtime = observer.wrap(StandInRuntime(latency_s=0.001, hang_for=frozenset({HANGS})))
    try:
        settings = Settings(_env_file=None, home=tmp, netuid=1, tasks=3, call_timeout=0.2)
        validator = Validator(chain, runtime, EchoChallenge(), settings, store, observer=observer)
        aio.run(validator.run_round(plan_round(chain.commitments(1), lambda ref: str(ref)), b"s"))
        return httpx.get(f"http://127.0.0.1:{observer.server.port}/metrics", timeout=5).text
    finally:
        observer.close()
        store.close()
        chain.close()


def test_a_live_metrics_page_passes_promtool(live_metrics, unavailable):
    promtool = shutil.which("promtool")
    if promtool is None:
        unavailable("promtool is not installed (apt-get install prometheus)")
    done = subprocess.run([promtool, "check", "metrics"], input=live_metrics, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout + done.stderr
    assert 'subnet_evaluations_total{fault="timeout",outcome="failed"} 3.0' in live_metrics  # bob's three tasks
    assert 'subnet_weight{uid="2"} 1.0' in live_metrics  # alice (uid 0: the owner, 1: the validator)


def test_every_metric_the_dashboard_queries_is_exported(live_metrics):
    exported = {line.split("{")[0].split(" ")[0] for line in live_metrics.splitlines() if line and line[0] != "#"}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bsubnet_[a-z_]+", expr)}
    assert used and used <= exported, used - exported
    families = {"rounds", "evaluations", "call_latency", "cache_hits", "spend", "weight"}
    assert all(any(f"subnet_{family}" in name for name in used) for family in families)
    assert all(t["datasource"]["uid"] == "subnet-prometheus" for panel in dashboard["panels"] for t in panel["targets"])


def test_the_compose_file_is_valid(unavailable):
    compose = shutil.which("docker-compose")
    if compose is None:
        unavailable("docker-compose is not installed (apt-get install docker-compose)")
    done = subprocess.run([compose, "-f", str(MONITORING / "docker-compose.yml"), "config"], capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "NETUID": "7"})
    assert done.returncode == 0, done.stderr
    assert "- --netuid=7" in done.stdout and "SUBNET_METRICS_PORT: '9100'" in done.stdout
    assert "127.0.0.1:3000:3000" in done.stdout and "127.0.0.1:9090:9090" in done.stdout  # loopback only
    promtool = shutil.which("promtool")
    if promtool is not None:
        checked = subprocess.run([promtool, "check", "config", str(MONITORING / "prometheus.yml")],
                                 capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
