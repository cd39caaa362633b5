"""Deployments as the real API behaves, through the REAL basilica SDK against the twin: UUID identity,
one POST, recovery by friendly name, a share token that exists only once, proof before a ledger
row closes, GPU models that are node labels."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.deployment_client import LIST_GRACE_S, DeploymentClient
from subnet.compute.deployments import DeploymentSpec, access_from, friendly_name, gpu_model_spellings
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
    assert ledger.get(spec().name).error.startswith("gone:")
    assert len(twin.requests("POST", "/deployments")) == 1  # proven absent, never re-sent


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


def test_gpu_types_go_verbatim_with_other_spellings_and_none_is_dropped_for_its_punctuation():
    assert gpu_model_spellings("TESLA V100") == ["TESLA V100", "V100"]
    assert gpu_model_spellings("RTX-A4000") == ["RTX-A4000", "A4000"]  # never "A40", another GPU
    assert gpu_model_spellings("NVIDIA H100 80GB HBM3") == ["NVIDIA H100 80GB HBM3", "H100-80GB-HBM3", "H100"]
    assert gpu_model_spellings("NVIDIA GeForce RTX 4090") == ["NVIDIA GeForce RTX 4090", "RTX-4090"]
    assert gpu_model_spellings("A100/SXM4 (80 GB)") == ["A100/SXM4 (80 GB)", "A100"]  # odd punctuation kept
    DeploymentSpec(name="sn-x", image=IMAGE, gpu_models=["TESLA V100"])  # the server normalises it: fine
    with pytest.raises(ConfigError, match="at most 10"):
        DeploymentSpec(name="sn-x", image=IMAGE, gpu_models=["--"])


@pytest.mark.parametrize("gpu_type, label", [("TESLA V100", "TESLAV100"), ("Tesla-V100 (SXM2)", "TESLAV100SXM2"),
                                             ("NVIDIA H100 80GB HBM3", "NVIDIAH10080GBHBM3")])
def test_a_node_labelled_with_the_normalised_full_name_is_matched(twin, deployments, env, gpu_type, label):
    """Nodes carry normalize(gpu_type) as written (autoscaler; NFD product names); the twin compares as written."""
    from subnet.compute.policy import Offering
    from subnet.twins.basilica_deployments import Node

    twin.state.nodes = (Node(label, 80),)
    offering = Offering("o", gpu_type, 1, False, Decimal("0.1"), "p", "r", 16)
    created = deployments.create(DeploymentSpec.for_offering(offering, name="sn-abc", image=IMAGE),
                                 owner="v", hourly_rate=offering.box_hourly_rate)
    assert twin.deployments[created.info.id].node.gpu_label == label


def test_a_tesla_v100_offering_reaches_the_api_verbatim_with_its_memory(twin, deployments, env):
    offering = next(o for o in deployments.gpu.list_offerings() if o.id == "v100-od")
    created = deployments.create(DeploymentSpec.for_offering(offering, name="sn-abc", image=IMAGE),
                                 owner="v", hourly_rate=offering.box_hourly_rate)
    gpus = twin.deployments[created.info.id].spec["resources"]["gpus"]
    assert gpus == {"count": 1, "model": ["TESLA V100", "V100"], "minGpuMemoryGb": 16, "spot": False}
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


# ---- the public server's generation: no names, no `public`, no container states ------------------

@pytest.fixture
def srv(twin):
    from subnet.twins.basilica_deployments import Generation

    twin.state.generation = Generation.named("srv")
    return twin


def test_the_public_server_lists_no_names_and_the_sdk_fills_blanks(srv, deployments):
    created = deployments.create(spec(), owner="v", hourly_rate=None)
    (listed,) = deployments.list()
    assert (listed.id, listed.friendly_name, listed.public) == (created.info.id, "", True)  # SDK defaults
    assert deployments.get(created.info.id).containers == ()


def test_a_deployment_echoed_back_as_public_is_still_called_with_its_token(srv, deployments):
    created = deployments.create(spec(), owner="v", hourly_rate=None)
    assert created.info.public is True  # what the SDK makes of an answer without `public`
    assert created.access.query == {"token": srv.deployments[created.info.id].share_token}


def test_names_absent_and_a_lost_create_answer_re_sends_it_and_pays_for_one_deployment(srv, deployments, ledger):
    other = deployments.create(spec("sn-ffffffffffff-u2-bbbb-000000"), owner="other", hourly_rate=None)
    ledger._db.execute("DELETE FROM ledger_resources WHERE name=?", (other.info.friendly_name,))  # another validator's
    srv.fault("POST /deployments", 504, after=True)  # created, the answer lost
    created = deployments.create(spec(), owner="v", hourly_rate=None)
    ours = [d for d in srv.deployments.values() if d.friendly_name == spec().name]
    assert len(ours) == 1 and created.info.id == ours[0].id and created.adopted  # the same UUID, idempotent
    assert ledger.get(spec().name).remote_id == ours[0].id and ledger.get(spec().name).state == "active"
    assert created.access.query == {"token": ours[0].share_token}  # a fresh token: the first died with the answer
    assert other.info.id in srv.deployments  # nobody else's deployment was touched
    assert deployments.delete(spec().name) and list(srv.deployments) == [other.info.id]


def test_names_absent_a_row_without_uuid_is_settled_by_re_sending_never_by_a_missing_name(srv, env, ledger):
    """The process died after sending the create: the row has no UUID, and the listing names nothing."""
    now = [1000.0]
    client = DeploymentClient(BasilicaGPUClient(load_settings(), ledger=ledger), clock=lambda: now[0])
    srv.fault("POST /deployments", 504, after=True)
    srv.fault("GET /deployments", 503, times=4)  # the lookup fails too (every retry): the row stays open, no UUID
    with pytest.raises(Unavailable):
        client.create(spec(), owner="v", hourly_rate=None)
    assert ledger.get(spec().name).remote_id is None and len(srv.deployments) == 1
    now[0] += 10 * LIST_GRACE_S  # however long: a nameless listing proves nothing about a name
    assert client.delete(spec().name) is True  # re-sent → its UUID → deleted by UUID
    assert srv.deployments == {} and len(srv.requests("POST", "/deployments")) == 2
    assert ledger.get(spec().name).state == "stopped" and not ledger.live()


def test_usage_history_is_read_in_pages_of_at_most_100(twin, deployments, ledger):
    for i in range(230):
        twin.state.billed[f"r-{i}"] = ("0.05", "0.001")
    created = deployments.create(spec(), owner="v", hourly_rate=Decimal("0.05"))
    deployments.delete(spec().name)
    twin.state.billed[created.info.id] = ("0.05", "0.0042")  # listed last, on the third page
    assert deployments.settle_costs() == 1 and ledger.get(spec().name).total_cost == Decimal("0.0042")
    pages = [r["query"] for r in twin.requests("GET", "/billing/usage")]
    assert [p["offset"] for p in pages] == ["0", "100", "200"] and all(int(p["limit"]) <= 100 for p in pages)


def test_the_twin_refuses_a_usage_page_over_100_as_the_server_does(twin, token):
    import basilica

    with pytest.raises(ValueError, match="Limit cannot exceed 100"):
        basilica.BasilicaClient(base_url=twin.url, api_key=token).list_usage_history(200, 0)
