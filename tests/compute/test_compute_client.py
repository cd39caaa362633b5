"""BasilicaGPUClient over the real SDK and the twin: retries, error mapping, ledger, deployments."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from subnet.compute import (
    AuthError,
    BasilicaError,
    BasilicaGPUClient,
    DeploymentSpec,
    Ledger,
    NotFound,
    Unavailable,
    load_settings,
    reconcile,
)
from subnet.compute.ledger import LedgerEntry


def test_retries_429_and_5xx_then_succeeds(twin, client, allowed_order):
    twin.fault("GET /v2/secure-cloud/gpu-prices", 429)
    twin.fault("GET /v2/secure-cloud/gpu-prices", 500)  # JSON error body: status hidden by the SDK
    twin.fault("GET /v2/secure-cloud/gpu-prices", 502, plain=True)
    assert [o.id for o in client.list_cheap_gpus()] == allowed_order
    assert len(twin.requests("GET", "/v2/secure-cloud/gpu-prices")) == 4


def test_persistent_5xx_gives_up_after_the_configured_attempts(twin, env, ledger):
    twin.fault("GET /billing/balance", 503, times=10, plain=True, message="upstream down")
    client = BasilicaGPUClient(load_settings(retries=3), ledger=ledger)
    with pytest.raises(Unavailable) as err:
        client.balance()
    assert str(err.value) == (
        "Basilica failed to read the balance (503): Request failed with status 503 Service Unavailable: "
        "upstream down (gave up after 3 attempts)"
    )
    assert err.value.exit_code == 6
    assert len(twin.requests("GET", "/billing/balance")) == 3


def test_backoff_doubles(twin, env, ledger):
    slept = []
    twin.fault("GET /billing/balance", 429, times=3)
    BasilicaGPUClient(load_settings(backoff=0.5), ledger=ledger, sleep=slept.append).balance()
    assert slept == [0.5, 1.0, 2.0]


def test_client_errors_are_not_retried(twin, client):
    twin.fault("GET /billing/balance", 403, times=5, message="scope billing:read missing")
    with pytest.raises(AuthError, match="403: scope billing:read missing"):
        client.balance()
    assert len(twin.requests("GET", "/billing/balance")) == 1


def test_deadline_turns_a_hung_call_into_unavailable(twin, env, ledger):
    twin.fault("GET /billing/balance", None, delay=1.0, times=2)
    client = BasilicaGPUClient(load_settings(timeout=0.2, retries=2), ledger=ledger)
    started = time.monotonic()
    with pytest.raises(Unavailable) as err:
        client.balance()
    assert str(err.value) == ("Basilica did not answer in time while trying to read the balance "
                              "(no answer within 0.2s) (gave up after 2 attempts)")
    assert time.monotonic() - started < 0.9


def test_rent_writes_the_ledger_before_starting(twin, client, ledger):
    out = client.rent_cheapest()
    (entry,) = ledger.entries("rental")
    post = twin.requests("POST", "/v2/secure-cloud/rentals/start")[0]["body"]
    assert post["name"] == entry.name and post["offering_id"] == "v100-sxm2-spot"
    assert (entry.state, entry.remote_id, entry.hourly_rate) == ("active", out.rental.rental_id, Decimal("0.06"))


def test_failed_start_leaves_a_failed_row_and_no_rental(twin, client, ledger):
    twin.fault("POST /v2/secure-cloud/rentals/start", 400, message="offering sold out")
    with pytest.raises(BasilicaError, match="offering sold out"):
        client.rent("v100-od")
    (entry,) = ledger.entries("rental")
    assert entry.state == "failed" and "offering sold out" in entry.error and entry.offering_id == "v100-od"
    assert twin.rentals == {}


def test_lost_start_answer_is_recovered_by_name_not_rented_twice(twin, client, ledger):
    twin.fault("POST /v2/secure-cloud/rentals/start", 502, after=True, plain=True)  # rented, answer lost
    out = client.rent("a4000-1x")
    assert len(twin.rentals) == 1 and len(twin.requests("POST", "/v2/secure-cloud/rentals/start")) == 1
    (entry,) = ledger.entries("rental")
    assert entry.state == "active" and entry.remote_id == out.rental.rental_id == next(iter(twin.rentals))


def test_stop_closes_the_row_with_the_final_cost(twin, client, ledger):
    out = client.rent("v100-od")
    res = client.stop(out.rental.rental_id)
    entry = ledger.get(out.entry.name)
    assert res.status == "stopped" and entry.state == "stopped"
    assert entry.total_cost == Decimal(str(res.total_cost))
    assert twin.rentals[out.rental.rental_id]["status"] == "stopped"


def test_registers_the_ssh_key_when_the_account_has_none(clean_env, ledger):
    from subnet.twins.basilica_twin import BasilicaTwin

    key = clean_env / "id_ed25519.pub"
    key.write_text("ssh-ed25519 AAAAC3Nza operator@box\n")
    with BasilicaTwin(token="t") as twin:
        client = BasilicaGPUClient(load_settings(api_key="t", api_url=twin.url, ssh_public_key=key), ledger=ledger)
        key_id = client.ensure_ssh_key()
        registered = twin.state.ssh_key
        assert (registered["id"], registered["public_key"]) == (key_id, "ssh-ed25519 AAAAC3Nza operator@box")
        assert client.ensure_ssh_key() == key_id and len(twin.requests("POST", "/ssh-keys")) == 1


def test_reclaim_stops_and_deletes_what_the_ledger_owns(twin, client, ledger):
    from subnet.compute.deployment_client import DeploymentClient

    deployments = DeploymentClient(client)
    rental = client.rent("v100-od").rental
    deployments.create(DeploymentSpec(name="mine", image="img", gpu_models=["V100"]), owner="validator", hourly_rate=None)
    theirs = deployments.create(DeploymentSpec(name="theirs", image="img", gpu_models=["V100"]), owner="other", hourly_rate=None)
    assert deployments.reclaim(owners={"validator"}, prefix="sn-none-") == ["mine"]
    assert sorted(twin.deployments) == [theirs.info.id]
    assert client.reclaim(owner="validator") == []  # the rental is the CLI's ("cli"), not the validator's
    assert client.reclaim() == [ledger.find(rental.rental_id).name]
    assert deployments.reclaim(owners={"other"}, prefix="sn-none-") == ["theirs"]
    assert twin.rentals[rental.rental_id]["status"] == "stopped" and ledger.live() == []


def test_not_found_status(client):
    with pytest.raises(NotFound, match="no rental 'nope'"):
        client.rental_status("nope")


def test_reconcile_flags_both_kinds_of_orphan(ledger):
    from subnet.compute.basilica import RemoteRental

    ledger.begin("rental", "ours")
    ledger.mark_active("ours", "r-1")
    ledger.begin("rental", "vanished")
    ledger.mark_active("vanished", "r-2")
    ledger.begin("rental", "lost-answer")  # still 'starting': its remote has our name
    ledger.begin("rental", "failed-but-running")
    ledger.mark_failed("failed-but-running", "timeout")
    remotes = [RemoteRental("r-1", "ours", "running"), RemoteRental("r-9", "console", "running"),
               RemoteRental("r-3", "lost-answer", "running"), RemoteRental("r-4", "failed-but-running", "running"),
               RemoteRental("r-5", "old", "stopped")]
    rec = reconcile(ledger.entries("rental"), remotes)
    assert [(e.name, r.rental_id) for e, r in rec.tracked] == [("ours", "r-1"), ("lost-answer", "r-3")]
    assert [(r.rental_id, why) for r, why in rec.remote_orphans] == [("r-9", "not in the ledger"),
                                                                      ("r-4", "ledger says failed")]
    assert [e.name for e in rec.ledger_orphans] == ["vanished"]


def test_cost_so_far_is_box_rate_times_elapsed_hours():
    entry = LedgerEntry(1, "rental", "n", "r", "active", "", None, "V100", 2, False, Decimal("0.31"), None,
                        created_at=1000.0, started_at=1000.0)
    assert entry.cost_so_far(now=1000.0 + 1800) == Decimal("0.155")
    entry.state, entry.stopped_at = "stopped", 1000.0 + 3600
    assert entry.cost_so_far(now=99999.0) == Decimal("0.31")
    entry.total_cost = Decimal("0.30")  # Basilica's final figure wins
    assert entry.cost_so_far(now=99999.0) == Decimal("0.30")


def test_ledger_table_is_created_once_and_shared(ledger_path):
    with Ledger(ledger_path) as a:
        a.begin("deployment", "d1", detail={"image": "x"})
    with Ledger(ledger_path) as b:
        assert b.get("d1").detail == {"image": "x"} and b.get("d1").state == "starting"
        with pytest.raises(ValueError):
            b.begin("job", "j1")




def test_a_404_on_stop_closes_the_row_only_when_the_rental_list_proves_it_gone(twin, client, ledger):
    rental = client.rent("v100-od").rental
    name = ledger.find(rental.rental_id).name
    twin.fault("POST /v2/secure-cloud/rentals/*", 404, message="Rental not found")
    with pytest.raises(NotFound):
        client.stop(rental.rental_id)
    assert ledger.get(name).state == "active"  # still listed as running: the money path stays open
    twin.rentals[rental.rental_id]["status"] = "stopped"  # stopped elsewhere (console, preemption)
    with pytest.raises(NotFound):
        client.stop(rental.rental_id)
    assert ledger.get(name).state == "stopped" and ledger.get(name).error == "not found remotely when stopped"
