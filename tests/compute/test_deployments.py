"""Deployments as the real API behaves, through the REAL basilica SDK against the twin: UUID identity,
one POST, recovery by friendly name, a share token that exists only once, proof before a ledger
row closes, GPU models that are node labels."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.deployment_client import LIST_GRACE_S, DeploymentClient
from subnet.compute.deployments import DeploymentSpec, access_from, friendly_name, gpu_model_labels
from subnet.compute.errors import BasilicaError, Unavailable
from subnet.compute.settings import ConfigError, load_settings

IMAGE = "r/x@sha256:" + "c" * 64


@pytest.fixture
def deployments(client):
    return DeploymentClient(client)


def spec(name="sn-0123456789ab-u1-cccc-aaaaaa", **kw) -> DeploymentSpec:
    return DeploymentSpec(name=name, image=IMAGE, gpu_models=["V100"], **kw)


def test_the_server_id_is_kept_and_used_for_every_later_call(twin, deployments, ledger):
    created = deployments.create(spec(env={"SEED": "s3cr3t"}), owner="v", hourly_rate=Decimal("0.05"))
    dep_id = created.info.id
    assert dep_id != spec().name and dep_id in twin.deployments  # a UUID, not our name
    assert twin.deployments[dep_id].friendly_name == spec().name
    entry = ledger.get(spec().name)
    assert (entry.state, entry.remote_id, entry.hourly_rate) == ("active", dep_id, Decimal("0.05"))
    assert entry.detail["price_source"] == "estimate" and "s3cr3t" not in json.dumps(entry.detail)
    assert deployments.delete(spec().name) is True
    assert twin.requests("DELETE")[-1]["path"] == f"/deployments/{dep_id}"
    assert ledger.get(spec().name).state == "stopped" and twin.deployments == {}


def test_the_share_token_is_taken_from_the_create_answer_only(twin, deployments):
    created = deployments.create(spec(), owner="v", hourly_rate=None)
    token = twin.deployments[created.info.id].share_token
    assert created.access.query == {"token": token}
    assert token not in repr(created) and token not in repr(created.access)  # never in logs
    assert deployments.get(created.info.id).id == created.info.id  # a later GET carries no token
    assert "shareToken" not in json.dumps(twin.state.requests)  # requests are not where it came from


def test_a_lost_create_answer_adopts_the_deployment_by_friendly_name(twin, deployments, ledger):
    twin.fault("POST /deployments", 504, after=True)  # created, but the answer is lost
    created = deployments.create(spec(), owner="v", hourly_rate=None)
    assert created.adopted and len(twin.requests("POST", "/deployments")) == 1  # never re-POSTed
    (only,) = twin.deployments.values()
    assert created.info.id == only.id and ledger.get(spec().name).remote_id == only.id
    # the first token died with the lost answer: a fresh one was made, and it is the live one
    assert created.access.query == {"token": only.share_token}
    assert twin.requests("POST", f"/deployments/{only.id}/share-token")


def test_a_lost_create_that_never_appears_keeps_its_row_open_until_a_listing_proves_it_gone(twin, env, ledger):
    now = [1000.0]
    client = DeploymentClient(BasilicaGPUClient(load_settings(), ledger=ledger, sleep=lambda s: None),
                              clock=lambda: now[0])
    twin.fault("POST /deployments", 503)  # refused before anything was created, but the status is a 5xx
    with pytest.raises(Unavailable, match="left for reclaim"):
        client.create(spec(), owner="v", hourly_rate=None)
    assert len(twin.requests("POST", "/deployments")) == 1 and ledger.get(spec().name).state == "starting"
    ledger._db.execute("UPDATE ledger_resources SET created_at=?", (now[0],))
    assert client.delete(spec().name) is False  # listing may lag a create: not yet
    now[0] += LIST_GRACE_S + 1
    assert client.delete(spec().name) is True
    assert "not in the deployment listing" in ledger.get(spec().name).error


@pytest.mark.parametrize("message", ["Insufficient balance", "GPU quota exceeded for this account",
                                     "validation failed: port must be 1-65535"])
def test_refusals_hidden_in_a_json_body_are_not_retried(twin, deployments, ledger, message):
    twin.fault("POST /deployments", 402, message=message)
    with pytest.raises(BasilicaError, match="refused") as err:
        deployments.create(spec(), owner="v", hourly_rate=None)
    assert not err.value.retryable and len(twin.requests("POST", "/deployments")) == 1
    assert ledger.get(spec().name).state == "failed" and not twin.deployments


def test_a_429_on_create_is_retried_because_nothing_was_done(twin, deployments):
    twin.fault("POST /deployments", 429, times=2)
    created = deployments.create(spec(), owner="v", hourly_rate=None)
    assert len(twin.requests("POST", "/deployments")) == 3 and list(twin.deployments) == [created.info.id]


def test_a_404_on_delete_never_closes_a_row_whose_deployment_is_still_listed(twin, deployments, ledger):
    created = deployments.create(spec(), owner="v", hourly_rate=None)
    twin.fault(f"DELETE /deployments/{created.info.id}", 404)
    assert deployments.delete(spec().name) is False
    assert ledger.get(spec().name).state == "active" and created.info.id in twin.deployments
    assert deployments.delete(spec().name) is True and twin.deployments == {}


def test_delete_by_uuid_after_a_404_closes_only_on_proof(twin, deployments, ledger):
    created = deployments.create(spec(), owner="v", hourly_rate=None)
    twin.deployments.pop(created.info.id)  # gone on the server side (e.g. its TTL ran out)
    assert deployments.delete(spec().name) is True
    assert "not in the deployment listing" in ledger.get(spec().name).error


def test_reclaim_finds_ledger_rows_and_unledgered_deployments_by_prefix(twin, deployments, ledger):
    mine = deployments.create(spec(friendly_name("0123456789ab", 1, "sha256:" + "a" * 64)), owner="me",
                              hourly_rate=None)
    theirs = deployments.create(spec(friendly_name("ffffffffffff", 2, "sha256:" + "b" * 64)), owner="other",
                                hourly_rate=None)
    # a create whose answer never came and whose row was lost with the disk: only the name says it is ours
    twin.state.deployments["x"] = twin.deployments[mine.info.id].__class__(
        id="x", friendly_name="sn-0123456789ab-u3-aaaa-000000", spec={}, url="", created_at="", node=None)
    done = deployments.reclaim(owners={"me"}, prefix="sn-0123456789ab-")
    assert sorted(done) == sorted([mine.info.friendly_name, "sn-0123456789ab-u3-aaaa-000000"])
    assert list(twin.deployments) == [theirs.info.id]  # another validator's deployment is untouched


def test_gpu_types_become_node_label_values_never_names_with_spaces():
    assert gpu_model_labels("TESLA V100") == ["V100", "TESLA-V100"]
    assert gpu_model_labels("RTX-A4000") == ["RTX-A4000", "A4000"]
    assert gpu_model_labels("NVIDIA H100 80GB HBM3") == ["H100-80GB-HBM3", "NVIDIA-H100-80GB-HBM3"]
    with pytest.raises(ConfigError, match="node-label"):
        DeploymentSpec(name="sn-x", image=IMAGE, gpu_models=["TESLA V100"])


def test_a_tesla_v100_offering_reaches_the_api_as_labels_and_memory(twin, deployments, env):
    offering = next(o for o in deployments.gpu.list_offerings() if o.id == "v100-od")
    created = deployments.create(DeploymentSpec.for_offering(offering, name="sn-abc", image=IMAGE),
                                 owner="v", hourly_rate=offering.box_hourly_rate)
    gpus = twin.deployments[created.info.id].spec["resources"]["gpus"]
    assert gpus == {"count": 1, "model": ["V100", "TESLA-V100"], "minGpuMemoryGb": 16, "spot": False}
    assert all(" " not in m for r in twin.requests("POST", "/deployments")
               for m in r["body"]["resources"]["gpus"]["model"])
    assert deployments.get(created.info.id).phase == "ready"  # it schedules on the twin's V100 node


def test_access_takes_the_parameter_from_the_share_url():
    a = access_from("https://d.example", "https://d.example/?t0k=abc", "abc", public=False)
    assert (a.base_url, a.query) == ("https://d.example", {"t0k": "abc"})
    assert access_from("https://d.example", None, "abc", public=False).query == {"token": "abc"}
    assert access_from("https://d.example", None, None, public=False) is None  # never call without it
    assert access_from("https://d.example", None, None, public=True).query == {}


def test_billed_costs_replace_estimates_when_the_usage_history_lists_deployments(twin, deployments, ledger):
    created = deployments.create(spec(), owner="v", hourly_rate=Decimal("0.05"))
    deployments.delete(spec().name)
    assert deployments.settle_costs() == 0  # the public server bills rentals only: estimates stay
    assert ledger.get(spec().name).total_cost is None
    twin.state.billed[created.info.id] = ("0.07", "0.0123")  # a server that does list deployments
    assert deployments.settle_costs() == 1
    entry = ledger.get(spec().name)
    assert entry.total_cost == Decimal("0.0123") and entry.error == "billed: from the usage history"
