"""Reclaim: every instance of ours is destroyed, by ledger and by label prefix, and nothing else.

In process against the twin (a lost create answer, a row whose instance is gone, another
validator's and a hand-made instance on the same account), then end to end through the real CLI:
`subnet validator run --mode vast` killed with SIGKILL mid-round, restarted, destroys every
instance the killed process left and leaves another validator's alone. The validator's Vast key is
a canary: it must reach neither an Actor's environment nor any line the validator prints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from envs_factory import make_broken_env, make_env
from subnet.compute.vast import VastClient
from subnet.runtime.process import ProcessRuntime
from subnet.state.identity import validator_identity
from subnet.twins.vast import VastTwin
from subnet.twins.vast.offers import vast_offer
from subnet.util import aio

from vast_support import KEY, runtime_for

OTHER = "sn-0123456789ab-"  # another validator (another state directory) on the same account
PORT = {"-p 8000:8000": "1"}


def _offers(n: int = 12):
    return [vast_offer(300 + i, "RTX A4000", "0.20", start_s=30) for i in range(n)]


def test_reclaim_by_ledger_and_label_never_anothers(tmp_path):
    with VastTwin(offers=_offers(), api_key=KEY, time_scale=30.0) as twin:  # host-less: billing only
        runtime, ledger = runtime_for(tmp_path / "home", twin.base_url)
        mine = runtime.prefix

        async def scene():
            async with VastClient(KEY, base_url=twin.base_url) as vast:
                lost = await vast.create_instance(300, image="x", env=PORT, label=f"{mine}u1-aaaaaaaaaaaa-000001")
                theirs = await vast.create_instance(301, image="x", env=PORT, label=f"{OTHER}u1-aaaaaaaaaaaa-000002")
                manual = await vast.create_instance(302, image="x", env=PORT, label="my-notebook")
                tracked = await vast.create_instance(303, image="x", env=PORT, label=f"{mine}u2-bbbbbbbbbbbb-000003")
                gone = await vast.create_instance(304, image="x", env=PORT, label=f"{mine}u3-cccccccccccc-000004")
                for name, iid in ((f"{mine}u2-bbbbbbbbbbbb-000003", tracked), (f"{mine}u3-cccccccccccc-000004", gone)):
                    ledger.begin("instance", name, owner=runtime.owner, hourly_rate=Decimal("0.2"))
                    ledger.mark_active(name, str(iid))
                ledger.begin("instance", f"{mine}u4-dddddddddddd-000005", owner=runtime.owner)  # answer never came
                await vast.destroy_instance(gone)  # destroyed by someone else: absent from the listing
                destroyed = await runtime.reclaim()
                left = {i.id for i in await vast.instances()}
                return destroyed, left, (lost, theirs, manual, tracked)

        destroyed, left, (lost, theirs, manual, tracked) = aio.run(scene())
        assert sorted(destroyed) == [f"{mine}u1-aaaaaaaaaaaa-000001", f"{mine}u2-bbbbbbbbbbbb-000003"]
        assert left == {theirs, manual}  # another validator's and a hand-made instance untouched
        rows = {r.name: r for r in ledger.entries("instance")}
        assert all(not r.live for r in rows.values())  # every row of ours closed ...
        assert rows[f"{mine}u3-cccccccccccc-000004"].error == "absent from the account's listing"  # ... on proof
        assert rows[f"{mine}u1-aaaaaaaaaaaa-000001"].remote_id == str(lost)  # found by label, recorded, closed
        assert aio.run(runtime.reclaim()) == []  # idempotent


PROBE = '''
import json, os
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "seen-env.json"), "a") as out:
    out.write(json.dumps(dict(os.environ)) + "\\n")
'''


def image(uid: int) -> str:
    return f"docker.io/miner{uid}/env@sha256:" + f"{uid:02x}" * 32


@pytest.fixture
def world(tmp_path):
    """A twin whose instances run for real, the validator's environment (the key a canary; settings
    refuse to forward it, test_llm_scoring), and two miners committed on the devchain."""
    canary = "canary-" + os.urandom(12).hex()
    root = tmp_path / "envs"
    envs = {1: make_env(root, "slow", "slow-honest"), 2: make_broken_env(root, "exits_at_import")}
    probe = envs[1] / "env.py"
    probe.write_text(PROBE + probe.read_text())
    resolve = {image(u): str(p) for u, p in envs.items()}.__getitem__
    with VastTwin(runtime=ProcessRuntime(start_timeout=30), resolve=resolve, time_scale=30.0, offers=_offers(),
                  api_key=canary) as twin:
        env = {**os.environ, "SUBNET_HOME": str(tmp_path / "home"), "VAST_URL": twin.base_url,
               "VAST_API_KEY": canary, "VAST_POLL": "0.2", "SUBNET_N": "64", "SUBNET_DEPTH": "2", "SUBNET_TASKS": "3",
               "SUBNET_ALLOWED_GPU_TYPES": "RTX-A4000:ondemand:1"}
        for uid in envs:
            done = subprocess.run([sys.executable, "-m", "subnet", "miner", "commit", image(uid), "--network",
                                   "devchain", "--wallet.name", f"miner{uid}", "--json"],
                                  capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
        yield twin, env, canary, envs[1] / "seen-env.json", tmp_path


def validator(*args: str) -> list[str]:
    return [sys.executable, "-m", "subnet", "validator", "run", "--network", "devchain", "--wallet.name",
            "validator", "--mode", "vast", *args]


def _running(twin) -> set[int]:
    rows = [twin.instance_row(i) for i in list(twin.instances)]
    return {r["id"] for r in rows if r and r["actual_status"] == "running"}


def test_validator_run_in_vast_mode_pays_honest_and_keeps_the_key_to_itself(world):
    twin, env, canary, seen, cwd = world
    warnings_on = {**env, "PYTHONWARNINGS": "always::ResourceWarning"}  # an unclosed client's sockets say so
    done = subprocess.run(validator("--once", "--json"), capture_output=True, text=True, env=warnings_on,
                          timeout=240, cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "unclosed" not in done.stderr.lower(), done.stderr[-3000:]  # the Vast client closed at stop
    report = json.loads(done.stdout.strip().splitlines()[-1])
    miners = {m["hotkey"]: m for m in report["miners"]}
    assert miners["miner1/default"]["verified"] == 3 and miners["miner1/default"]["weight"] == 1.0
    assert miners["miner2/default"]["faults"] == {"start_failed": 3}
    assert twin.instances == {} and len(twin.created) == 2
    assert canary not in done.stdout + done.stderr  # never in a log line
    environments = [json.loads(line) for line in seen.read_text().splitlines()]
    assert environments, "the probe Actor never ran"
    for actor_env in environments:  # what the Actor's code could read
        assert canary not in json.dumps(actor_env) and "VAST_API_KEY" not in actor_env
        assert "SUBNET_ACTOR_TOKEN" not in actor_env  # taken before env.py ran
    assert all("VAST_API_KEY" not in c.env_keys for c in twin.created)


def test_sigkill_mid_round_then_restart_destroys_every_instance_of_ours_only(world):
    twin, env, canary, seen, cwd = world
    theirs = aio.run(_create_theirs(twin, canary))
    long = {**env, "SUBNET_TASKS": "40"}  # a long round: 40 × 0.6 s
    proc = subprocess.Popen(validator("--once"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=long, cwd=cwd)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (_running(twin) - {theirs}):
        time.sleep(0.1)
    time.sleep(1.0)  # calls under way
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    left = set(twin.instances) - {theirs}
    assert left, "the kill should have left a live instance behind"
    identity = validator_identity(cwd / "home")
    assert all(twin.instance_row(i)["label"].startswith(f"sn-{identity}-") for i in left)

    restart = subprocess.run(validator("--once"), capture_output=True, text=True, env={**env, "SUBNET_TASKS": "1"},
                             timeout=240, cwd=cwd)
    assert restart.returncode == 0, restart.stderr[-3000:]
    assert not left & set(twin.instances), "leftovers still alive after the restart"
    assert set(twin.instances) == {theirs}  # another validator's instance untouched
    assert canary not in restart.stdout + restart.stderr + proc.stderr.read()


async def _create_theirs(twin, key: str) -> int:
    async with VastClient(key, base_url=twin.base_url) as vast:
        return await vast.create_instance(311, image="docker.io/other/env@sha256:" + "9" * 64, env=PORT,
                                          label=f"{OTHER}u7-999999999999-abcdef")
