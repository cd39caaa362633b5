"""The validator's LLM key never reaches an Actor nor a log line: process mode (issue 16).

The key is a canary (`canary-<random>`) in the validator's environment (SUBNET_LLM_API_KEY), where
the gateway's settings read it; the twin upstream requires exactly that key, so every answer the
probe gets proves the key was in use. The probe Actor (tests/llm_probe.py) searches its
environment, /proc (every environ and cmdline it may open) and the files under its folder, the
validator's state folder, /tmp and the working directory, and calls the gateway with what it was
given. Process mode is trusted local code (docs/design.md): an Actor running as the validator's
user could read the validator's memory, which no environment scrubbing prevents; what this test
proves is that the validator hands the Actor nothing but its round token. Docker mode, which
isolates, is tests/docker/test_llm_docker.py.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

import pytest

from llm_probe import leaked, make_probe_env, new_canary
from subnet.protocol import Submission
from subnet.runtime.process import ProcessRuntime
from subnet.twins.llm_upstream import ORACLE_MODEL, LlmUpstreamTwin
from subnet.util import aio
from subnet.validator.llm import make_gateway


@pytest.fixture
def canary(monkeypatch) -> str:
    value = new_canary()
    monkeypatch.setenv("SUBNET_LLM_API_KEY", value)
    return value


def run_probe(runtime, service, env_dir: Path, uid: int, probe_kwargs: dict) -> tuple[dict, float, dict]:
    """Open the probe's Actor with its round's credentials, run one metered task, close the round."""

    async def scenario():
        await service.start()
        try:
            llm_round = service.round(runtime, round_id=1)
            environment = llm_round.environment(uid, f"hotkey-{uid}")
            async with runtime.open(Submission(uid, f"hotkey-{uid}", str(env_dir), "sha256:" + "1" * 64, "probe"),
                                    environment=environment) as actor:
                llm_round.begin(uid, 0)
                found = await actor.call("evaluate", {"model": ORACLE_MODEL, **probe_kwargs}, 120)
                usd = await llm_round.end(uid, 0)
            return found, usd, await llm_round.close()
        finally:
            await service.stop()

    return aio.run(scenario())


def test_process_actor_gets_only_its_token_and_the_key_stays_out_of_logs(tmp_path, canary, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    env_dir = make_probe_env(tmp_path / "envs")
    home = tmp_path / "home"
    home.mkdir()
    twin = LlmUpstreamTwin(api_key=canary).start()  # answers only when the gateway sends the canary
    try:
        # No key in the arguments: the gateway reads SUBNET_LLM_API_KEY from the environment.
        service = make_gateway(home / "state.sqlite", llm_upstream=twin.url, llm_models=ORACLE_MODEL)
        roots = [str(env_dir), str(home), tempfile.gettempdir(), os.getcwd()]
        found, usd, closed = run_probe(ProcessRuntime(start_timeout=30), service, env_dir, 7,
                                       {"scan_roots": roots, "scan_seconds": 60})
        upstream_auth = [headers.get("authorization", "") for headers, _body in twin.requests]
    finally:
        twin.stop()

    # The Actor got exactly the two variables (beside what any Python process needs) and its token.
    given = set(found["env"]) - {"PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "PYTHONUNBUFFERED", "OMP_NUM_THREADS"}
    assert given == {"OPENAI_BASE_URL", "OPENAI_API_KEY"}, given
    assert found["env"]["OPENAI_BASE_URL"] == service.gateway.local_url
    assert found["env"]["OPENAI_API_KEY"] != canary
    # Its token worked: the call went through the gateway, upstream with the canary, and was paid.
    assert found["chat"]["status"] == 200, found["chat"]
    assert upstream_auth and all(a == f"Bearer {canary}" for a in upstream_auth)
    assert usd > 0 and closed.get(7, 0) == pytest.approx(usd)
    # ...and the canary is nowhere it looked.
    assert found["proc_files"] > 0 and found["files"] > 0 and found["scan_finished"], found
    assert not leaked(canary, json.dumps(found["hits"]), json.dumps(found["env"]))
    out, err = capfd.readouterr()
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert not leaked(canary, out, err, logs)


def test_basilica_actor_gets_only_its_token_through_the_deployment(tmp_path, canary, caplog, capfd):
    """Basilica mode against the twin: the real runtime creates a deployment with the real SDK; its
    `env` holds only OPENAI_BASE_URL (SUBNET_GATEWAY_PUBLIC_URL + /v1) and the round's token. The
    twin runs the deployment as a local process, so as in process mode the validator's memory is
    out of the probe's scope (on real Basilica the Actor runs on another machine)."""
    from subnet.config import Settings
    from subnet.dryrun.basilica import LocalBasilica
    from subnet.protocol.commitment import parse_image_ref

    caplog.set_level(logging.DEBUG)
    env_dir = make_probe_env(tmp_path / "envs")
    home = tmp_path / "home"
    settings = Settings(_env_file=None, home=home, tasks=1)
    runtime = LocalBasilica(ProcessRuntime(start_timeout=30), settings)
    ref = parse_image_ref(f"registry.example.org/probe@sha256:{'2' * 64}")
    twin = LlmUpstreamTwin(api_key=canary).start()
    try:
        service = make_gateway(home / "state.sqlite", llm_upstream=twin.url, llm_models=ORACLE_MODEL)
        source = runtime.source_for(ref, str(env_dir))

        async def public_url_once_bound():  # the twin's Actors are on this machine: loopback is "public"
            await service.start()
            service.public_url = service.gateway.local_url.removesuffix("/v1")

        aio.run(public_url_once_bound())
        roots = [str(env_dir), str(home), tempfile.gettempdir()]
        found, usd, closed = run_probe(runtime, service, Path(source), 8, {"scan_roots": roots, "scan_seconds": 60})
    finally:
        twin.stop()
        runtime.close()
    given = set(found["env"]) - {"PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "PYTHONUNBUFFERED", "OMP_NUM_THREADS"}
    assert given == {"OPENAI_BASE_URL", "OPENAI_API_KEY"}, given
    assert found["env"]["OPENAI_BASE_URL"] == service.gateway.local_url and found["env"]["OPENAI_API_KEY"] != canary
    assert found["chat"]["status"] == 200, found["chat"]
    assert usd > 0 and closed.get(8, 0) == pytest.approx(usd)
    assert found["proc_files"] > 0 and found["files"] > 0 and found["scan_finished"], found
    assert not leaked(canary, json.dumps(found["hits"]), json.dumps(found["env"]))
    out, err = capfd.readouterr()
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert not leaked(canary, out, err, logs)


def test_an_llm_round_on_basilica_needs_a_public_url(tmp_path):
    from subnet.validator.llm import LlmUnavailable, actor_base_url

    class Basilica:
        name = "basilica"

    with pytest.raises(LlmUnavailable, match="SUBNET_GATEWAY_PUBLIC_URL"):
        actor_base_url(Basilica(), object(), None)
    assert actor_base_url(Basilica(), object(), "https://gw.example.org/") == "https://gw.example.org/v1"
