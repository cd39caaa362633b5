"""The twin's default model answers the built-in LLM challenge through the real gateway, with no key."""

from __future__ import annotations

import asyncio
import json

from prometheus_client import CollectorRegistry

from gateway.conftest import client
from subnet.challenges.prose_ledger import ProseLedger
from subnet.gateway import Gateway, GatewaySettings
from subnet.twins.llm_upstream import ORACLE_MODEL, LlmUpstreamTwin


def test_the_oracle_model_passes_the_challenge_through_the_gateway(tmp_path, monkeypatch):
    for name in ("SUBNET_LLM_API_KEY", "CHUTES_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    twin = LlmUpstreamTwin().start()  # its default model, as the dry run uses it
    gw = Gateway(GatewaySettings(_env_file=None, llm_upstream=twin.url, llm_models=ORACLE_MODEL),
                 usage_db=tmp_path / "u.sqlite", registry=CollectorRegistry())
    asyncio.run(gw.start())
    try:
        challenge = ProseLedger()
        task = challenge.make_tasks(b"round-seed", 1)[0]
        payload = challenge.payload(task, "hk-a")
        grant = gw.grant(3, 5, "hk-a")
        gw.begin_task(3, 5, task.index)
        reply = client(gw, grant.token).chat.completions.create(
            model=ORACLE_MODEL, messages=[{"role": "user", "content": f"{payload['story']}\n\n{payload['question']}"}])
        claim = challenge.receive(task, "hk-a", json.loads(reply.choices[0].message.content))
        assert claim.verdict.ok, claim.verdict
        assert 0 < gw.end_task(3, 5, task.index) < challenge.llm_task_budget_usd
    finally:
        asyncio.run(gw.stop())
        twin.stop()
