"""A real hostile Actor in a real container: what it can see, write, reach and exhaust.

Every network attempt targets only this test's own containers and listeners: a peer container on
another Docker network, and a listener the test opens on the host's bridge addresses.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
import uuid

import pytest

from docker_support import REPO, leftovers, run, sub

pytestmark = pytest.mark.docker

MiB = 1 << 20


def _container(docker_client, runtime):
    containers, networks = leftovers(docker_client, runtime.run_id)
    assert len(containers) == 1 and len(networks) == 1
    return containers[0], networks[0]


def test_container_configuration_is_hardened(docker_client, make_runtime, hostile_image):
    runtime = make_runtime(memory="256m", pids=64, cpus=1.0, tmpfs_size="16m")

    async def scenario():
        async with runtime.open(sub(hostile_image.reference)) as session:
            container, network = _container(docker_client, runtime)
            inside = await session.call("identity", {}, timeout=10)
            return container.attrs, network.attrs, inside

    attrs, net, inside = run(scenario())
    host = attrs["HostConfig"]
    assert host["CapDrop"] == ["ALL"] and not host.get("CapAdd")
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True and host["Privileged"] is False
    assert host["Memory"] == 256 * MiB and host["MemorySwap"] == 256 * MiB
    assert host["PidsLimit"] == 64 and host["NanoCpus"] == 1_000_000_000
    assert host["Tmpfs"] == {"/tmp": "rw,noexec,nosuid,nodev,size=16m"}
    assert host["RestartPolicy"]["Name"] == "no" and host["Init"] is True
    assert attrs["Config"]["User"] == "10001:10001"
    assert attrs["Config"]["Labels"]["subnet.role"] == "miner-actor"
    assert attrs["Config"]["Labels"]["subnet.run"] == runtime.run_id
    assert list(attrs["NetworkSettings"]["Networks"]) == [net["Name"]]
    assert net["Internal"] is True and net["Labels"]["subnet.run"] == runtime.run_id
    # What the Actor itself observes: not root, no capabilities, no way to gain privileges.
    assert inside["uid"] == 10001 and inside["gid"] == 10001
    assert inside["cap_eff"] == "0000000000000000" and inside["no_new_privs"] == "1"
    assert inside["ipv6_disabled"] == "1"


def test_validator_secrets_never_reach_the_actor(docker_client, make_runtime, hostile_image, monkeypatch):
    canaries = {
        "BASILICA_API_TOKEN": f"canary-{uuid.uuid4().hex}",
        "BASILICA_API_KEY": f"canary-{uuid.uuid4().hex}",
        "SUBNET_WALLET_PASSWORD": f"canary-{uuid.uuid4().hex}",
        "OPENAI_API_KEY": f"canary-{uuid.uuid4().hex}",
    }
    for name, value in canaries.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SUBNET_TEST_FORWARDED", "allowed-value")
    runtime = make_runtime(forward_env=["SUBNET_TEST_FORWARDED", "SUBNET_TEST_UNSET"])

    async def scenario():
        async with runtime.open(sub(hostile_image.reference)) as session:
            container, _ = _container(docker_client, runtime)
            return await session.call("environ", {}, timeout=10), container.attrs["Config"]["Env"]

    seen, config_env = run(scenario())
    dump = repr(seen) + repr(config_env)
    for name, value in canaries.items():
        assert name not in seen and value not in dump
    assert seen["SUBNET_TEST_FORWARDED"] == "allowed-value"  # the allowlist works...
    assert "SUBNET_TEST_UNSET" not in seen  # ...and forwards only what is set


def test_root_filesystem_is_read_only_and_tmp_is_noexec(make_runtime, hostile_image):
    runtime = make_runtime()
    paths = ["/app/env.py", "/app/new.py", "/etc/passwd", "/usr/local/bin/python3", "/root.txt", "/tmp/ok.txt"]

    async def scenario():
        async with runtime.open(sub(hostile_image.reference)) as session:
            writes = await session.call("write_fs", {"paths": paths}, timeout=10)
            return writes, await session.call("exec_tmp", {}, timeout=10)

    writes, executed = run(scenario())
    assert writes.pop("/tmp/ok.txt") == "written"
    # EROFS (30) on the root filesystem; EACCES (13) where the non-root user lacks permission first.
    assert all(result in ("errno 30", "errno 13") for result in writes.values()), writes
    assert writes["/app/new.py"] == "errno 30" and writes["/root.txt"] == "errno 30"
    assert executed == "errno 13"  # /tmp is noexec


class _Listener:
    """A tiny TCP listener on all host addresses; counts accepted connections."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def test_no_route_out_and_no_way_to_the_host(docker_client, make_runtime, hostile_image, base_image, test_labels):
    """The Actor cannot reach a container on another network, nor the host's own addresses."""
    listener = _Listener()
    peer_net = docker_client.networks.create(f"subnet-test-peer-{uuid.uuid4().hex[:8]}", driver="bridge", labels=test_labels)
    peer = None
    try:
        peer = docker_client.containers.run(
            base_image.id, ["python3", "-m", "http.server", "8000"], detach=True, network=peer_net.name,
            labels=test_labels, user="10001:10001",
        )
        peer.reload()
        peer_ip = peer.attrs["NetworkSettings"]["Networks"][peer_net.name]["IPAddress"]
        peer_gateway = peer.attrs["NetworkSettings"]["Networks"][peer_net.name]["Gateway"]
        bridge = docker_client.networks.get("bridge").attrs["IPAM"]["Config"][0]
        docker0 = bridge.get("Gateway") or str(ipaddress.ip_network(bridge["Subnet"])[1])
        # Control: from an ordinary container the host listener IS reachable, so a failure
        # below is the Actor's isolation, not a dead listener.
        code, out = peer.exec_run(["python3", "-c", f"import socket; socket.create_connection(('{peer_gateway}', {listener.port}), 3)"])
        assert code == 0, out
        accepted_before = listener.accepted

        runtime = make_runtime()

        async def scenario():
            async with runtime.open(sub(hostile_image.reference)) as session:
                _, network = _container(docker_client, runtime)
                own_gateway = network.attrs["IPAM"]["Config"][0]["Gateway"]
                targets = [[peer_ip, 8000], [own_gateway, listener.port], [docker0, listener.port],
                           [peer_gateway, listener.port]]
                return targets, await session.call("connect", {"targets": targets, "timeout": 2.0}, timeout=30)

        targets, results = run(scenario())
        assert len(results) == len(targets)
        for target, outcome in results.items():
            assert outcome.startswith("failed"), f"the Actor reached {target}: {outcome}"
        assert listener.accepted == accepted_before
    finally:
        listener.close()
        if peer is not None:
            peer.remove(force=True)
        peer_net.remove()


def test_fork_bomb_hits_the_pids_limit_and_the_actor_recovers(make_runtime, hostile_image):
    runtime = make_runtime(pids=64)

    async def scenario():
        async with runtime.open(sub(hostile_image.reference)) as session:
            bomb = await session.call("fork_bomb", {"limit": 5000}, timeout=60)
            return bomb, await session.call("ping", {}, timeout=10)

    bomb, after = run(scenario())
    assert bomb["error"] == "errno 11"  # EAGAIN: the pids cgroup refused the fork
    assert 0 < bomb["forked"] < 64
    assert after == "pong"


def test_a_validator_in_a_container_reaches_its_actors(docker_client, base_image, hostile_image, test_labels):
    """The project's validator image drives the host daemon through /var/run/docker.sock: it must
    join each Actor's internal network to reach it, and leave before the network is removed."""
    prefix, base = sys.prefix, sys.base_prefix  # this interpreter and venv, mounted read-only
    mounts = {"/var/run/docker.sock": {"bind": "/var/run/docker.sock", "mode": "rw"},
              str(REPO): {"bind": str(REPO), "mode": "ro"}, base: {"bind": base, "mode": "ro"}}
    if not prefix.startswith(str(REPO)):
        mounts[prefix] = {"bind": prefix, "mode": "ro"}
    validator = docker_client.containers.run(
        base_image.id, [sys.executable, str(REPO / "tests" / "docker" / "dood_validator.py"), hostile_image.reference],
        detach=True, volumes=mounts, environment={"PYTHONPATH": str(REPO)}, labels=test_labels,
    )
    try:
        code = validator.wait(timeout=120)["StatusCode"]
        output = validator.logs(stdout=True, stderr=False).decode().strip().splitlines()
        assert code == 0, validator.logs().decode()[-2000:]
        result = json.loads(output[-1])
        assert result["answer"] == "pong" and result["joined_as"] == validator.id
        assert leftovers(docker_client, result["run"]) == ([], [])
        validator.reload()
        assert list(validator.attrs["NetworkSettings"]["Networks"]) == ["bridge"]  # it left the Actor's network
    finally:
        validator.remove(force=True)
