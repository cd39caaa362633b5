"""The twin speaks the real API: the REAL basilica SDK parses its answers and raises its errors."""

from __future__ import annotations

import socket
import subprocess
import sys

import basilica
import httpx
import pytest

from subnet.twins.basilica_twin import BasilicaTwin, serve_twin


TOKEN = "local-twin-token"  # for the tests that start their own twin


@pytest.fixture
def sdk(twin, token):
    return basilica.BasilicaClient(base_url=twin.url, api_key=token)


def test_gpu_prices_parse_with_per_gpu_rate_as_string(twin, sdk, catalogue):
    offerings = sdk.list_secure_cloud_gpus()
    assert len(offerings) == len(catalogue) - 1  # available_only=true drops the unavailable one
    a4000 = next(o for o in offerings if o.id == "a4000-2x")
    assert (a4000.gpu_type, a4000.gpu_count, a4000.hourly_rate, a4000.is_spot) == ("RTX-A4000", 2, "0.155", False)
    assert twin.requests("GET", "/v2/secure-cloud/gpu-prices")[0]["query"] == {"available_only": "true"}


def test_rental_lifecycle_through_the_sdk(twin, sdk):
    key = sdk.get_ssh_key()
    started = sdk.start_secure_cloud_rental("v100-od", key.id, "my-box")
    assert (started.name, started.status, started.hourly_cost) == ("my-box", "running", 0.15)
    assert twin.requests("POST")[-1]["body"] == {"offering_id": "v100-od", "ssh_public_key_id": key.id,
                                                 "name": "my-box"}
    listed = sdk.list_secure_cloud_rentals()
    assert listed.total_count == 1 and listed.rentals[0].rental_id == started.rental_id
    stopped = sdk.stop_secure_cloud_rental("my-box")
    assert stopped.status == "stopped" and stopped.rental_id == started.rental_id
    assert sdk.list_secure_cloud_rentals().rentals[0].stopped_at is not None
    assert sdk.get_balance() == {"balance": "25.00", "last_updated": sdk.get_balance()["last_updated"]}


def test_deployment_spec_is_recorded_camel_case_and_named_by_uuid(twin, sdk):
    twin.state.deployment_url = "http://127.0.0.1:9/{name}"
    res = sdk.create_deployment("actor-1", "reg/repo@sha256:" + "b" * 64, port=8000, env={"K": "v"}, cpu="2",
                                memory="8Gi", gpu_count=2, gpu_models=["RTX-A4000"], spot=False, ttl_seconds=900,
                                public=False)
    dep_id = res.instance_name
    assert (res.friendly_name, res.state, res.public) == ("actor-1", "Active", False) and dep_id != "actor-1"
    assert res.url == f"http://127.0.0.1:9/{dep_id}"
    assert res.share_url == f"http://127.0.0.1:9/{dep_id}?token={twin.deployments[dep_id].share_token}"
    spec = twin.deployments[dep_id].spec
    assert spec["instanceName"] == "actor-1" and spec["ttlSeconds"] == 900 and spec["env"] == {"K": "v"}
    assert spec["resources"] == {"cpu": "2", "memory": "8Gi", "gpus": {"count": 2, "model": ["RTX-A4000"], "spot": False}}
    assert sdk.get_deployment(dep_id).share_token is None  # only the create answer carries it
    assert sdk.list_deployments().deployments[0].friendly_name == "actor-1"
    assert sdk.get_deployment_logs(dep_id, False, 1) == "twin: scheduled on RTXA4000\n"  # labels match after normalising
    with pytest.raises(KeyError):
        sdk.get_deployment("actor-1")  # the friendly name is not an id
    again = sdk.create_deployment("actor-1", "other-img")  # idempotent by name: the same one, unchanged
    assert again.instance_name == dep_id and again.share_token is None and len(twin.deployments) == 1
    assert sdk.delete_deployment(dep_id).state == "Terminating"
    with pytest.raises(KeyError):
        sdk.get_deployment(dep_id)


@pytest.mark.parametrize("model, states", [("srv", ["Active", "Active"]), ("operator", ["Pending", "Active"])])
def test_a_deployment_becomes_ready_by_replicas_whatever_its_state_says(clean_env, model, states):
    with BasilicaTwin(token=TOKEN, ready_after_polls=2) as twin:
        twin.state.state_model = model
        sdk = basilica.BasilicaClient(base_url=twin.url, api_key=TOKEN)
        dep_id = sdk.create_deployment("slow", "img").instance_name
        seen = [sdk.get_deployment(dep_id) for _ in range(2)]
        assert [d.state for d in seen] == states
        assert [(d.phase, d.replicas.ready) for d in seen] == [("starting", 0), ("ready", 1)]


def test_a_gpu_no_node_carries_stays_pending_in_scheduling(twin, sdk):
    dep_id = sdk.create_deployment("x", "img", gpu_count=1, gpu_models=["A100"]).instance_name
    got = sdk.get_deployment(dep_id)
    assert (got.state, got.phase, got.replicas.ready) == ("Active", "scheduling", 0)  # SRV: the DB state
    big = sdk.create_deployment("y", "img", gpu_count=1, gpu_models=["H100"], min_gpu_memory_gb=100).instance_name
    assert sdk.get_deployment(big).phase == "scheduling"


def test_rate_limit_is_per_api_token(clean_env):
    with BasilicaTwin(token=TOKEN, rate_limit=(3, 60.0)) as twin:
        sdk = basilica.BasilicaClient(base_url=twin.url, api_key=TOKEN)
        for _ in range(3):
            sdk.list_deployments()
        with pytest.raises(RuntimeError, match="Rate limit exceeded"):
            sdk.list_deployments()


@pytest.mark.parametrize(
    "status, exc_type",
    [(400, ValueError), (401, PermissionError), (403, PermissionError), (404, KeyError),
     (409, RuntimeError), (429, RuntimeError), (500, RuntimeError), (503, RuntimeError)],
)
def test_sdk_raises_builtins_for_http_errors(twin, sdk, status, exc_type):
    twin.fault("GET /billing/balance", status)
    with pytest.raises(exc_type):
        sdk.get_balance()


def test_wrong_token_is_401_and_network_failure_is_connection_error(twin):
    with pytest.raises(PermissionError, match="Authentication error"):
        basilica.BasilicaClient(base_url=twin.url, api_key="nope").get_balance()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(ConnectionError):
        basilica.BasilicaClient(base_url=dead, api_key=TOKEN).get_balance()


def test_faults_queue_per_route_and_slow_answers(twin, sdk):
    twin.fault("GET /billing/balance", 429, times=2)
    twin.fault("GET /billing/balance", None, delay=0.3)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="Rate limit exceeded"):
            sdk.get_balance()
    assert sdk.get_balance()["balance"] == "25.00"  # the slow one still answers
    assert len(twin.requests("GET", "/billing/balance")) == 3


def test_serve_twin_yields_url_and_admin_api_controls_it(clean_env, catalogue):
    with serve_twin(token=TOKEN) as url:
        httpx.put(f"{url}/_twin/offerings", json=[catalogue[0]]).raise_for_status()
        fault = {"route": "GET /billing/balance", "faults": [{"status": 503, "times": 1}]}
        httpx.post(f"{url}/_twin/faults", json=fault).raise_for_status()
        sdk = basilica.BasilicaClient(base_url=url, api_key=TOKEN)
        assert [o.id for o in sdk.list_secure_cloud_gpus()] == ["a6000-spot"]
        with pytest.raises(RuntimeError):
            sdk.get_balance()
        assert [r["path"] for r in httpx.get(f"{url}/_twin/requests").json()] == [
            "/v2/secure-cloud/gpu-prices", "/billing/balance"]


def test_twin_runs_as_a_module_for_dry_runs(clean_env):
    proc = subprocess.Popen([sys.executable, "-m", "subnet.dryrun.basilica_twin", "--port", "0", "--token", TOKEN],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        url = line.split("listening on ")[1].split()[0]
        sdk = basilica.BasilicaClient(base_url=url, api_key=TOKEN)
        assert len(sdk.list_secure_cloud_gpus()) == 8
        sdk.register_ssh_key("k", public_key="ssh-ed25519 AAAA k")
        sdk.delete_ssh_key()  # holds the GIL: only safe against an out-of-process twin
        assert sdk.get_ssh_key() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_twin_refuses_non_loopback():
    with pytest.raises(ValueError, match="loopback"):
        BasilicaTwin(host="0.0.0.0")


# ---- the server's own rules, as the last public server wrote them (issue 14) ----------------------

def test_the_rate_limit_counts_per_client_ip_or_api_key_not_per_token():
    """SRV rate_limit.rs: keyed by X-API-Key if sent, else the client IP; checked before authentication."""
    with BasilicaTwin(token="t", rate_limit=(3, 60.0)) as twin:
        for token in ("t", "t", "someone-else"):  # a wrong token still counts against the IP
            httpx.get(f"{twin.url}/billing/balance", headers={"Authorization": f"Bearer {token}"})
        refused = httpx.get(f"{twin.url}/billing/balance", headers={"Authorization": "Bearer t"})
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "BASILICA_API_RATE_LIMIT"
        keyed = httpx.get(f"{twin.url}/billing/balance", headers={"Authorization": "Bearer t", "X-API-Key": "k1"})
        assert keyed.status_code == 200  # a key has a bucket of its own


def test_error_codes_and_messages_are_the_servers(twin, token):
    auth = {"Authorization": f"Bearer {token}"}
    missing = httpx.get(f"{twin.url}/deployments").json()["error"]
    assert (missing["code"], missing["message"]) == ("BASILICA_API_AUTH_ERROR", "Authentication error: Missing Authorization header")
    bad = httpx.post(f"{twin.url}/deployments", headers=auth, json={"instanceName": "Bad_Name", "image": "x"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BASILICA_API_INVALID_REQUEST"
    assert bad.json()["error"]["message"].startswith("Invalid request: instance_name 'Bad_Name'")
    limit = httpx.get(f"{twin.url}/billing/usage", headers=auth, params={"limit": 101})
    assert limit.status_code == 400 and limit.json()["error"] == limit.json()["error"] | {
        "code": "BASILICA_API_BAD_REQUEST", "message": "Bad request: Limit cannot exceed 100", "retryable": False}
    gone = httpx.get(f"{twin.url}/deployments/nope", headers=auth).json()["error"]
    assert (gone["code"], gone["message"]) == ("BASILICA_API_NOT_FOUND", "Deployment not found")


def test_node_labels_are_compared_as_written(twin, sdk):
    """The server normalises the requested models, not the nodes' labels (controller 412-475)."""
    from subnet.twins.basilica_deployments import Node

    twin.state.nodes = (Node("Tesla-V100", 16),)  # a label nobody normalised
    dep = sdk.create_deployment("a", "r/x@sha256:" + "a" * 64, port=8000, gpu_count=1, gpu_models=["Tesla-V100"])
    assert sdk.get_deployment(dep.instance_name).phase == "scheduling"  # never matches: it waits for a node
    twin.state.nodes = (Node("TESLAV100", 16),)
    dep = sdk.create_deployment("b", "r/x@sha256:" + "a" * 64, port=8000, gpu_count=1, gpu_models=["Tesla-V100"])
    assert sdk.get_deployment(dep.instance_name).phase == "ready"


def test_the_public_servers_generation_drops_names_public_and_container_states(twin, sdk, token):
    from subnet.twins.basilica_deployments import Generation

    dep = sdk.create_deployment("a", "r/x@sha256:" + "a" * 64, port=8000, gpu_count=1, gpu_models=["TESLA V100"],
                                public=False)
    auth = {"Authorization": f"Bearer {token}"}
    today = httpx.get(f"{twin.url}/deployments/{dep.instance_name}", headers=auth).json()
    assert {"friendlyName", "public", "containerStatuses"} <= set(today)
    twin.state.generation = Generation.named("srv")
    srv = httpx.get(f"{twin.url}/deployments/{dep.instance_name}", headers=auth).json()
    assert not {"friendlyName", "public", "containerStatuses", "shareToken"} & set(srv) and srv["phase"] == "ready"
    listed = httpx.get(f"{twin.url}/deployments", headers=auth).json()["deployments"][0]
    assert "friendlyName" not in listed and "public" not in listed
    events = sdk.get_deployment_events(dep.instance_name, 5)["events"]
    assert [e["reason"] for e in events] == ["Started", "Pulling"] and set(events[0]) == {
        "type", "reason", "message", "count", "last_timestamp"}
