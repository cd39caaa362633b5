"""The validator loop running an LLM challenge (issue 16): it owns the gateway for as long as it runs,
grants each miner one token per round, runs each miner's tasks one at a time with each task's LLM
dollars metered, refuses the round's tokens once it ends, and shows the spend in the stored report,
the status table and the metrics."""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
from rich.console import Console

from subnet.chain.devchain import DevChain
from subnet.cli.validator_status import print_status
from subnet.config import Settings
from subnet.dryrun.run import _commit_envs
from subnet.runtime.process import ProcessRuntime
from subnet.state.first_seen import FirstSeenStore
from subnet.state.store import Store
from subnet.twins.llm_upstream import ORACLE_MODEL, LlmUpstreamTwin
from subnet.util import aio
from subnet.validator.llm import make_gateway
from subnet.validator.loop import ValidatorLoop
from subnet.validator.observability import Metrics, leaderboard

REPO = Path(__file__).resolve().parents[1]
LLM_ENV = REPO / "envs" / "prose-ledger-openai"


class RecordingRuntime:
    """The process runtime, noting each Actor's environment and its calls in flight at once."""

    def __init__(self, inner) -> None:
        self.inner, self.name = inner, inner.name
        self.environments: dict[int, dict] = {}
        self.most_in_flight: dict[int, int] = {}

    @contextlib.asynccontextmanager
    async def open(self, submission, environment=None):
        self.environments[submission.uid] = dict(environment or {})
        async with self.inner.open(submission, environment) as actor:
            yield _Counting(actor, submission.uid, self.most_in_flight)


class _Counting:
    def __init__(self, actor, uid: int, most: dict[int, int]) -> None:
        self.actor, self.uid, self.most, self.now = actor, uid, most, 0

    async def call(self, method, kwargs, timeout):
        self.now += 1
        self.most[self.uid] = max(self.most.get(self.uid, 0), self.now)
        try:
            return await self.actor.call(method, kwargs, timeout)
        finally:
            self.now -= 1


class AfterRound(Metrics):
    """Metrics that also try every token of the round the moment it has finished."""

    def __init__(self, runtime: RecordingRuntime) -> None:
        super().__init__()
        self.runtime, self.statuses = runtime, {}

    def round_finished(self, report, fresh, receipt) -> None:
        super().round_finished(report, fresh, receipt)
        for uid, env in self.runtime.environments.items():
            answer = httpx.post(env["OPENAI_BASE_URL"] + "/chat/completions", timeout=10,
                                headers={"authorization": f"Bearer {env['OPENAI_API_KEY']}"},
                                json={"model": ORACLE_MODEL, "messages": [{"role": "user", "content": "again"}]})
            self.statuses[uid] = answer.status_code


def test_validator_loop_meters_llm_tasks_and_refuses_tokens_after_the_round(tmp_path, monkeypatch):
    monkeypatch.delenv("SUBNET_LLM_API_KEY", raising=False)
    settings = Settings(_env_file=None, home=tmp_path / "home", challenge="prose-ledger/1", tasks=3, per_miner=4,
                        netuid=1)
    chain = DevChain(tmp_path / "devchain.sqlite", hotkey="validator")
    chain.register(settings.netuid, "validator", validator_permit=True)
    sources, _ = _commit_envs(chain, [LLM_ENV], settings.netuid)
    store = Store(tmp_path / "state.sqlite")
    runtime = RecordingRuntime(ProcessRuntime(start_timeout=30))
    metrics = AfterRound(runtime)
    twin = LlmUpstreamTwin().start()
    try:
        llm = make_gateway(tmp_path / "state.sqlite", None, metrics.registry, 0.01, llm_upstream=twin.url,
                           llm_models=ORACLE_MODEL, llm_api_key=None)
        loop = ValidatorLoop(chain, runtime, settings, store, FirstSeenStore(store.path), allow_local=True,
                             observer=metrics, llm=llm)
        loop.resolve = lambda ref: sources[ref.digest]  # env folders, as the dry run runs them
        reports = []
        aio.run(loop.run_forever(0, reports.append, once=True))
    finally:
        twin.stop()
    (report,) = reports
    (miner,) = report.miners
    uid = miner.uid
    assert miner.verified == 3 and miner.weight == 1.0 and miner.llm_usd > 0
    assert set(runtime.environments[uid]) == {"OPENAI_BASE_URL", "OPENAI_API_KEY"}
    assert runtime.most_in_flight[uid] == 1  # per_miner=4 asked, an LLM challenge runs one at a time
    assert metrics.statuses == {uid: 401}  # the round's token died with the round
    assert not llm.started  # the gateway stopped with the loop
    rows = store.results_for_digest(miner.digest)
    assert len(rows) == 3 and all(r.llm_usd > 0 for r in rows)
    assert abs(sum(r.llm_usd for r in rows) - miner.llm_usd) < 1e-6
    rendered = metrics.render().decode()
    assert f'subnet_llm_round_usd{{uid="{uid}"}}' in rendered and "subnet_llm_usd_total" in rendered
    board = leaderboard(store.path)
    console = Console(record=True, width=120)
    print_status({"network": "devchain", "netuid": 1, "leaderboard": board, "recent_rounds": [],
                  "cache": {"evaluated": 1, "cached": 0}, "spend": "-", "last_weights": None}, console)
    assert "LLM $" in console.export_text()
    store.close()
    chain.close()


def _validator_once(tmp_path, **env_vars):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUBNET_", "CHUTES_"))}
    env.update(SUBNET_HOME=str(tmp_path / "home"), **env_vars)
    cmd = [sys.executable, "-m", "subnet", "validator", "run", "--network", "devchain", "--mode", "docker",
           "--once", "--json"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)


def test_validator_run_starts_and_stops_the_gateway_and_never_prints_the_key(tmp_path, docker_client):
    """`subnet validator run --mode docker` with an LLM challenge: the gateway listens on the run's
    relay bridge for as long as the command runs, and the bridge is gone after it."""
    import json

    from subnet.state.identity import validator_identity

    from llm_probe import leaked, new_canary

    canary = new_canary()
    twin = LlmUpstreamTwin(api_key=canary).start()
    try:
        done = _validator_once(tmp_path, SUBNET_CHALLENGE="prose-ledger/1", SUBNET_LLM_UPSTREAM=twin.url,
                               SUBNET_LLM_MODELS=ORACLE_MODEL, SUBNET_LLM_API_KEY=canary)
    finally:
        twin.stop()
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["challenge"] == "prose-ledger/1"
    assert "LLM gateway serving" in done.stderr  # it ran for the life of the command
    assert not leaked(canary, done.stdout, done.stderr)
    mine = {"label": [f"subnet.owner={validator_identity(tmp_path / 'home')}"]}
    assert docker_client.networks.list(filters=mine) == []


def test_an_unknown_challenge_is_one_line(tmp_path):
    done = _validator_once(tmp_path, SUBNET_CHALLENGE="prose-ledger/9")
    assert done.returncode == 1
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert lines[-1].startswith("error: unknown challenge 'prose-ledger/9' (known: ") and "Traceback" not in done.stderr
