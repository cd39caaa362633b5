"""Networks for miner containers: one internal Docker network per Actor, plus a host guard.

Why one network per Actor: miners cannot reach each other (no copying a neighbour's answers, no
DoS of a neighbour), and a network is cheap. Why `internal=True`: Docker drops everything the
container forwards off its bridge, so there is no route to the internet (and its embedded DNS
does not resolve outside names). The validator host still reaches the container's bridge IP.

What `internal` does NOT stop (verified on Docker 20.10): connections from the container to the
host's *own* addresses (its bridge gateway, docker0, any host IP) go to the host's INPUT chain,
not FORWARD, so services listening on 0.0.0.0 on the validator host are reachable. The host guard
is one iptables rule that rejects new connections arriving from any of our bridges
(`snact*` interfaces); replies to the validator's own connections are ESTABLISHED and pass.
The rule matches only our interface prefix, so it is installed once and left in place.

A validator that itself runs in a container on the same daemon (the project's Dockerfile mounts
/var/run/docker.sock) has no route to those bridges: it joins each Actor's network instead
(`own_container`), and leaves it before the network is removed.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socket
import subprocess
import threading
from typing import Any, Mapping

log = logging.getLogger(__name__)

BRIDGE_PREFIX = "snact"  # + 10 hex = 15 chars, the kernel's interface name limit
GUARD_COMMENT = "subnet-actor-guard"
_GUARD_RULE = ["INPUT", "-i", BRIDGE_PREFIX + "+", "-m", "conntrack", "--ctstate", "NEW",
               "-m", "comment", "--comment", GUARD_COMMENT, "-j", "REJECT"]

_guard_lock = threading.Lock()
_guard_state: dict[str, str] = {}


class GuardUnavailable(Exception):
    """The host guard could not be checked or installed; the message says why in one line."""


def new_slot() -> str:
    """A random id naming one Actor's container, network and bridge."""
    return secrets.token_hex(5)


def create_network(client: Any, name: str, slot: str, labels: Mapping[str, str], icc: bool = False) -> Any:
    """An internal bridge network whose interface is `snact<slot>` (the host guard matches it).

    Inter-container traffic is off unless the validator's own container must join (`icc`).
    """
    return client.networks.create(
        name,
        driver="bridge",
        internal=True,
        check_duplicate=True,
        labels=dict(labels),
        options={
            "com.docker.network.bridge.name": BRIDGE_PREFIX + slot,
            "com.docker.network.bridge.enable_icc": "true" if icc else "false",
        },
    )


def own_container(client: Any, explicit: str = "") -> Any | None:
    """The container this process runs in, if it runs under the daemon `client` talks to.

    `explicit` (a name or id) is trusted as given. Otherwise Docker's default hostname, the first
    12 hex of the container id, must match both the id and the container's configured hostname;
    anything else is treated as the host (PID 1's name or mount tables are not evidence: in this
    kind of sandbox they point at unrelated containers).
    """
    import docker.errors

    key = explicit or socket.gethostname()
    try:
        container = client.containers.get(key)
    except docker.errors.NotFound:
        if explicit:
            raise
        return None
    if explicit:
        return container
    hostname = (container.attrs.get("Config") or {}).get("Hostname")
    return container if container.id.startswith(key) and hostname == key else None


def remove_network(network: Any) -> None:
    """Disconnect whatever is still attached (e.g. the validator's own container), then remove."""
    network.reload()
    for container_id in (network.attrs.get("Containers") or {}):
        network.disconnect(container_id, force=True)
    network.remove()


def ensure_host_guard(mode: str) -> str:
    """Make sure the host guard rule is in place; returns what was found or done.

    mode "off": do nothing; "auto": install when possible, log a warning once when not;
    "require": raise `GuardUnavailable` when it cannot be installed.
    """
    if mode == "off":
        return "off"
    with _guard_lock:
        if "ok" in _guard_state:
            return _guard_state["ok"]
        try:
            result = _install_guard()
        except GuardUnavailable as exc:
            if mode == "require":
                raise
            if "warned" not in _guard_state:
                _guard_state["warned"] = str(exc)
                log.warning(
                    "Docker Actors can open connections to this host's own services: %s "
                    "(run as root with iptables, or set SUBNET_DOCKER_HOST_GUARD=off to silence)", exc
                )
            return f"unavailable: {exc}"
        _guard_state["ok"] = result
        return result


def _install_guard() -> str:
    iptables = shutil.which("iptables")
    if iptables is None:
        raise GuardUnavailable("iptables is not installed")
    if os.geteuid() != 0:
        raise GuardUnavailable("not running as root, cannot add the iptables rule")
    if _iptables(iptables, "-C") == 0:
        return "present"
    if _iptables(iptables, "-I") != 0:
        raise GuardUnavailable("iptables refused the rule (see the log)")
    log.info("installed host guard: iptables -I %s", " ".join(_GUARD_RULE))
    return "installed"


def _iptables(binary: str, action: str) -> int:
    # Fixed argv, no shell, nothing from miners in it.
    proc = subprocess.run([binary, "-w", "10", action, *_GUARD_RULE], capture_output=True, text=True, timeout=30)
    if proc.returncode != 0 and action != "-C":
        log.error("iptables %s failed: %s", action, " ".join(proc.stderr.split())[:300])
    return proc.returncode
