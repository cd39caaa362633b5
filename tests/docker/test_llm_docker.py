"""Docker mode and the LLM gateway (issue 16): an Actor reaches the gateway through its relay and
nothing else, and the validator's key (a canary in SUBNET_LLM_API_KEY) is nowhere inside it nor in
any log line.

The probe (tests/llm_probe.py) runs in a real hardened container on its internal network; the
gateway is the real one, listening on the run's relay bridge, in front of the twin upstream, which
answers only when the gateway sends the canary (so the key was in use). Every address the probe
tries is this test's own or TEST-NET-1 (192.0.2.0/24, never routed).
"""

from __future__ import annotations

import http.server
import json
import logging
import threading

import pytest

from docker_support import leftovers, run, sub
from llm_probe import leaked, make_probe_env, new_canary
from subnet.miner.build import build_env_image
from subnet.runtime.docker_relay import RELAY_ALIAS, relay_url
from subnet.twins.llm_upstream import ORACLE_MODEL, LlmUpstreamTwin
from subnet.validator.llm import make_gateway

pytestmark = pytest.mark.docker

UNROUTED = ("192.0.2.1", 80)  # TEST-NET-1: no packet to it leaves any network


@pytest.fixture(scope="module")
def probe_image(docker_client, base_image, tmp_path_factory):
    env_dir = make_probe_env(tmp_path_factory.mktemp("probe"))
    return build_env_image(env_dir, "subnet-test/llm-probe:latest", client=docker_client)


class _Listener:
    """Another service on the relay bridge's host address: an Actor must not reach it."""

    def __init__(self, host: str) -> None:
        self.server = http.server.ThreadingHTTPServer((host, 0), http.server.BaseHTTPRequestHandler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_docker_actor_reaches_only_the_gateway_and_never_sees_the_key(
        docker_client, make_runtime, probe_image, tmp_path, monkeypatch, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    canary = new_canary()
    monkeypatch.setenv("SUBNET_LLM_API_KEY", canary)
    runtime = make_runtime(memory="256m", host_guard="require")
    twin = LlmUpstreamTwin(api_key=canary).start()
    bind_host = runtime.gateway_bind_host()
    other = _Listener(bind_host)
    service = make_gateway(tmp_path / "state.sqlite", bind_host, llm_upstream=twin.url, llm_models=ORACLE_MODEL)

    async def scenario():
        await service.start()
        try:
            llm_round = service.round(runtime, round_id=1)
            gateway = (service.gateway.bound_host, service.gateway.bound_port)
            async with runtime.open(sub(probe_image.reference), environment=llm_round.environment(7, "hk7")) as actor:
                relay = [c for c in leftovers(docker_client, runtime.run_id)[0] if c.name.endswith("-relay")]
                llm_round.begin(7, 0)
                found = await actor.call("evaluate", {
                    "model": ORACLE_MODEL, "scan_roots": ["/"], "scan_seconds": 90,
                    "others": [gateway, (bind_host, other.port), UNROUTED]}, 180)
                usd = await llm_round.end(7, 0)
            return found, usd, relay, gateway
        finally:
            await service.stop()

    try:
        found, usd, relay, gateway = run(scenario())
    finally:
        other.close()
        twin.stop()
    # Through the relay, with its token only: answered, upstream with the canary, and paid.
    assert found["env"]["OPENAI_BASE_URL"] == relay_url() == f"http://{RELAY_ALIAS}:8080/v1"
    assert found["env"]["OPENAI_API_KEY"] != canary
    assert found["chat"]["status"] == 200, found["chat"]
    assert twin.requests and all(h.get("authorization") == f"Bearer {canary}" for h, _ in twin.requests)
    assert usd > 0
    # Nothing else: not the gateway's own address, not the host's other service, not the world.
    assert all(result != "open" for result in found["reach"].values()), found["reach"]
    assert len(found["reach"]) == 3
    # No validator variable but the two, and the canary nowhere it looked (the whole filesystem).
    assert not [k for k in found["env"] if k.startswith(("SUBNET_", "CHUTES_", "BASILICA_"))]
    assert found["scan_finished"] and found["files"] > 1000 and found["proc_files"] > 0, found
    assert not leaked(canary, json.dumps(found["hits"]), json.dumps(found["env"]))
    out, err = capfd.readouterr()
    logs = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert not leaked(canary, out, err, logs)
    # The relay is hardened like an Actor and went with it.
    (container,) = relay
    host = container.attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and host["ReadonlyRootfs"] is True and container.attrs["Config"]["User"]
    assert leftovers(docker_client, runtime.run_id)[0] == []


def test_docker_dry_run_pays_the_reference_llm_env(docker_client, base_image, tmp_path, monkeypatch):
    """`subnet dry-run --mode docker` on envs/prose-ledger-openai: built, run hardened, its calls
    through the relay to the gateway and the twin upstream, paid, its LLM dollars reported; the
    run's relay bridge and relays are gone afterwards."""
    from docker_support import REPO, owned_by
    from subnet.state.identity import validator_identity
    from test_dry_run import run_dry_run

    home = tmp_path / "home"
    monkeypatch.setenv("SUBNET_HOME", str(home))
    monkeypatch.delenv("SUBNET_LLM_API_KEY", raising=False)
    data = run_dry_run("--env", str(REPO / "envs" / "prose-ledger-openai"), "--tasks", "2", mode="docker",
                       timeout=900)
    (miner,) = data["miners"]
    assert data["mode"] == "docker" and data["challenge"] == "prose-ledger/1"
    assert miner["verified"] == 2 and miner["weight"] == 1.0 and miner["llm_usd"] > 0, miner
    assert owned_by(docker_client, validator_identity(home)) == ([], [])
