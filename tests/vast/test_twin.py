"""The Vast twin's instances really run: an env folder under the process runtime, its port 8000
mapped to a loopback HostPort once `actual_status` is "running"; a broken image exits with the reason
in `status_msg`; the knobs (outbid, lost machine) stop the Actor; destroy frees the port. Driven by
our `VastClient` over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import inspect
import time
from decimal import Decimal

import httpx
import pytest

from subnet.compute.vast import VastClient, VastInstance
from subnet.runtime.process import ProcessRuntime
from subnet.twins.vast import VastTwin, vast_offer

from envs_factory import make_broken_env, make_env

KEY = "twin-test-key"
HONEST, BROKEN, UNKNOWN = ("docker.io/m/honest@sha256:" + "1" * 64, "docker.io/m/broken@sha256:" + "2" * 64,
                           "docker.io/m/nowhere@sha256:" + "3" * 64)
PORT = {"-p 8000:8000": "1"}
SCALE = 60.0  # production seconds per test second: a 120 s pull and boot takes 2 s here


@pytest.fixture
def twin(tmp_path):
    images = {HONEST: str(make_env(tmp_path / "envs", "honest", "m1")),
              BROKEN: str(make_broken_env(tmp_path / "envs", "exits_at_import"))}
    offers = [vast_offer(1, "RTX 4090", "0.30", min_bid="0.10", start_s=120.0), vast_offer(2, "RTX 4090", "0.40")]
    with VastTwin(ProcessRuntime(start_timeout=30), resolve=images.__getitem__, time_scale=SCALE, offers=offers,
                  api_key=KEY) as twin:
        yield twin


def call(twin, fn):
    async def go():
        async with VastClient(KEY, base_url=twin.base_url, backoff=0.01) as client:
            return await fn(client)
    return asyncio.run(go())


async def until(client: VastClient, instance_id: int, done, timeout: float = 60.0) -> tuple[VastInstance, list[str]]:
    """Poll the instance until `done(inst)`; returns it and every actual_status seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inst = await client.instance(instance_id)
        if inst is not None and (not seen or seen[-1] != inst.actual_status):
            seen.append(inst.actual_status)
        if inst is not None and done(inst):
            return inst, seen
        await asyncio.sleep(0.1)
    raise AssertionError(f"instance {instance_id} never got there: {seen}")


def running(inst):
    return inst.actual_status != "loading"


def test_created_instance_loads_then_runs_with_health_on_the_mapped_port(twin):
    async def go(c):
        new = await c.create_instance(1, image=HONEST, env=PORT | {"SUBNET_ACTOR_TOKEN": "t"}, price=Decimal("0.12"),
                                      label="sn-v-u1-abc")
        first = await c.instance(new)
        inst, seen = await until(c, new, running)
        actor_env = twin._actor_env(f"twin-{new}")
        async with httpx.AsyncClient() as http:
            guarded = await http.get(f"{inst.public_url(8000)}/health", headers={"Authorization": "Bearer t"})
            health = guarded.status_code
            bare = (await http.get(f"{inst.public_url(8000)}/health")).status_code
        await c.destroy_instance(new)
        return first, inst, seen, health, bare, actor_env
    first, inst, seen, health, bare, actor_env = call(twin, go)
    assert first.actual_status == "loading" and first.public_port(8000) is None
    assert seen[-1] == "running" and "exited" not in seen
    assert inst.public_ipaddr == "127.0.0.1" and inst.ports["8000/tcp"][0]["HostPort"].isdigit()
    assert health == 200
    assert actor_env == {"SUBNET_ACTOR_TOKEN": "t"}  # the instance's env, docker options out, no API key
    if "env" in inspect.signature(ProcessRuntime.open).parameters:  # the runtime gives it to the Actor ...
        assert bare == 401  # ... which then guards itself, as the image wrapper does on Vast
    with pytest.raises(httpx.TransportError):  # destroyed: nothing listens on that port any more
        httpx.get(f"{inst.public_url(8000)}/health", timeout=2)


def test_a_broken_image_exits_with_the_reason(twin):
    async def go(c):
        new = await c.create_instance(2, image=BROKEN, env=PORT)
        return await until(c, new, running)
    inst, seen = call(twin, go)
    assert inst.actual_status == "exited" and inst.status_msg and inst.public_port(8000) is None


def test_an_image_the_registry_lacks_exits_as_a_failed_pull(twin):
    async def go(c):
        return await until(c, await c.create_instance(2, image=UNKNOWN, env=PORT), running)
    inst, _ = call(twin, go)
    assert inst.actual_status == "exited" and "manifest unknown" in inst.status_msg


def test_without_a_port_option_nothing_is_mapped(twin):
    async def go(c):
        return await until(c, await c.create_instance(2, image=HONEST, env={}), running)
    inst, _ = call(twin, go)
    assert inst.actual_status == "running" and inst.ports == {} and inst.public_url() is None


def test_outbid_stops_the_box_and_lost_machine_goes_offline(twin):
    async def go(c):
        bid = await c.create_instance(1, image=HONEST, env=PORT, price=Decimal("0.10"))
        demand = await c.create_instance(2, image=HONEST, env=PORT)
        up, _ = await until(c, bid, running)
        await until(c, demand, running)
        twin.outbid(bid)
        twin.lose_machine(demand)
        return up, await c.instance(bid), await c.instance(demand)
    up, outbid, lost = call(twin, go)
    assert (outbid.actual_status, outbid.intended_status, outbid.cur_state) == ("exited", "stopped", "stopped")
    assert "outbid" in outbid.status_msg and outbid.public_port() is None
    assert lost.actual_status == "offline" and lost.public_port() is None
    with pytest.raises(httpx.TransportError):  # the outbid box's Actor is really stopped
        httpx.get(f"{up.public_url()}/health", timeout=2)
    with pytest.raises(ValueError):
        twin.outbid(lost.id)  # an on-demand box cannot be outbid


def test_a_runtype_other_than_args_does_not_start_the_image(twin):
    status = twin.answer("PUT", "/api/v0/asks/2/", {}, {"image": HONEST, "env": PORT, "runtype": "ssh_proxy"},
                         f"Bearer {KEY}")
    assert status[0] == 200
    row = twin.instance_row(status[1]["new_contract"])
    assert row["ports"] == {}  # Vast's ssh launcher replaced the entrypoint: no Actor behind port 8000


def test_the_twin_listens_on_loopback_only():
    with pytest.raises(ValueError):
        VastTwin(host="0.0.0.0")
