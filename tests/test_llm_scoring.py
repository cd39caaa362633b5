"""LLM dollars in the score, the stored results and the validator's refusals (issue 16)."""

from __future__ import annotations

import sqlite3

import pytest

from subnet.state.store import Store, TaskRecord
from subnet.validator.llm import LlmUnavailable, llm_for, needs_llm
from subnet.validator.scoring import MinerMetrics, scores


def metrics(uid: int, latencies, llm=(), price=None) -> MinerMetrics:
    return MinerMetrics(uid, f"hk{uid}", "sha256:" + "0" * 64, tasks=len(latencies), verified=len(latencies),
                        latencies_ms=tuple(latencies), hourly_price=price, llm_usd=tuple(llm))


def test_cost_per_task_is_box_price_times_latency_plus_the_tasks_llm_dollars():
    # 360 ms at 2 $/h = $0.0002 of box; plus $0.0003 of LLM = $0.0005 per task.
    m = metrics(1, [360.0, 360.0, 360.0], llm=[0.0003, 0.0003, 0.0003], price=2.0)
    assert m.cost_per_task == pytest.approx(0.0005)


def test_the_same_speed_with_more_llm_dollars_scores_less_by_the_cost_ratio():
    thrifty = metrics(1, [500.0] * 4, llm=[0.0001] * 4)
    lavish = metrics(2, [500.0] * 4, llm=[0.0004] * 4)
    box = 500.0 / 3_600_000.0  # process mode: 1 $/h
    result = scores([thrifty, lavish], accuracy_floor=0.8)
    assert result[1] == 1.0
    assert result[2] == pytest.approx((box + 0.0001) / (box + 0.0004))


def test_without_llm_dollars_scores_are_what_they_were():
    fast, slow = metrics(1, [10.0, 12.0, 11.0], price=0.5), metrics(2, [20.0, 22.0, 21.0], price=0.5)
    result = scores([fast, slow], accuracy_floor=0.8)
    assert result == {1: 1.0, 2: pytest.approx(11.0 / 21.0)}


def test_llm_dollars_survive_the_store_and_old_files_read_as_zero(tmp_path):
    path = tmp_path / "state.sqlite"
    old = sqlite3.connect(path)  # a file from before the llm_usd column
    old.executescript("CREATE TABLE task_results (round_id INTEGER NOT NULL, digest TEXT NOT NULL, uid INTEGER NOT NULL,"
                      " hotkey TEXT NOT NULL, task_index INTEGER NOT NULL, verified INTEGER NOT NULL, fault TEXT,"
                      " reason TEXT, latency_ms REAL, gpu_type TEXT, hourly_price REAL,"
                      " PRIMARY KEY (round_id, digest, uid, task_index));"
                      "INSERT INTO task_results VALUES (1, 'sha256:a', 3, 'hk', 0, 1, NULL, '', 12.5, NULL, NULL);")
    old.close()
    store = Store(path)
    round_id = store.begin_round("process", "prose-ledger/1", 5)
    store.finish_round(round_id, [TaskRecord("sha256:a", 3, "hk", 1, True, None, "", 40.0, llm_usd=0.00042)])
    rows = store.results_for_digest("sha256:a")
    store.close()
    assert [(r.task_index, r.llm_usd) for r in rows] == [(0, 0.0), (1, 0.00042)]


def test_an_llm_challenge_on_basilica_without_a_public_url_is_refused_in_one_line(tmp_path, monkeypatch):
    from subnet.challenges.matrix_chain import MatrixChain
    from subnet.challenges.prose_ledger import ProseLedger

    monkeypatch.delenv("SUBNET_GATEWAY_PUBLIC_URL", raising=False)

    class Basilica:
        name = "basilica"

    assert needs_llm(ProseLedger()) and not needs_llm(MatrixChain())
    assert llm_for(MatrixChain(), Basilica(), tmp_path / "u.sqlite") is None
    with pytest.raises(LlmUnavailable) as refused:
        llm_for(ProseLedger(), Basilica(), tmp_path / "u.sqlite")
    assert "SUBNET_GATEWAY_PUBLIC_URL" in str(refused.value) and "\n" not in str(refused.value)


def test_docker_actors_of_an_llm_challenge_get_no_gpu(tmp_path):
    from subnet.config import Settings
    from subnet.runtime.docker import DockerRuntime, challenge_needs_gpu

    assert challenge_needs_gpu("matrix-chain/2") and not challenge_needs_gpu("prose-ledger/1")
    runtime = DockerRuntime(Settings(_env_file=None, home=tmp_path, challenge="prose-ledger/1"), client=object())
    assert runtime.gpu_pool() is None  # decided before any daemon is asked


def test_the_challenge_suggests_the_task_budget_and_the_operator_decides(tmp_path, monkeypatch):
    from subnet.validator.llm import make_gateway

    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.delenv("SUBNET_LLM_TASK_BUDGET_USD", raising=False)
    suggested = make_gateway(tmp_path / "a.sqlite", task_budget_usd=0.005, llm_upstream="http://127.0.0.1:9/v1")
    assert suggested.gateway.settings.llm_task_budget_usd == 0.005
    monkeypatch.setenv("SUBNET_LLM_TASK_BUDGET_USD", "0.2")
    chosen = make_gateway(tmp_path / "b.sqlite", task_budget_usd=0.005, llm_upstream="http://127.0.0.1:9/v1")
    assert chosen.gateway.settings.llm_task_budget_usd == 0.2


@pytest.mark.parametrize("name", ["SUBNET_LLM_API_KEY", "CHUTES_API_KEY", "BASILICA_API_TOKEN", "VAST_API_KEY",
                                  "OPENAI_API_KEY"])
def test_no_allowlist_forwards_a_validator_credential_to_actors(name):
    from pydantic import ValidationError

    from subnet.config import Settings

    with pytest.raises(ValidationError, match=f"may not forward {name}"):
        Settings(_env_file=None, forward_env=["LANGUAGE", name])
    assert Settings(_env_file=None, forward_env=["LANGUAGE"]).forward_env == ["LANGUAGE"]


def test_the_relay_images_name_and_tag():
    from subnet.runtime.docker_relay import name_and_tag

    assert name_and_tag("python:3.11-slim") == ("python", "3.11-slim")
    assert name_and_tag("registry.local:5000/relay") == ("registry.local:5000/relay", "latest")
    assert name_and_tag("registry.local:5000/relay:v2") == ("registry.local:5000/relay", "v2")
