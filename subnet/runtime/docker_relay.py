"""How a Docker Actor on its internal network reaches the validator's LLM gateway, and nothing else.

Design: one *relay bridge* per validator run, and one *relay container* per LLM Actor.

- The relay bridge is a Docker bridge network created with `internal=True` (no route off the
  host). Its host-side address (the bridge's gateway IP) is where the gateway listens
  (`gateway_bind_host`): an address that exists only on this bridge, so the gateway is never on
  the LAN, and whose interface (`snrly*`) is not matched by the host guard (`snact*`), so the
  relay's connection to the host's own address on it is allowed (it goes to the host's INPUT
  chain, see `subnet.runtime.docker_net`).
- The relay container (the project's base image, `python:3.11-slim`, or SUBNET_DOCKER_RELAY_IMAGE,
  pulled once if missing, running the few lines of `RELAY_SCRIPT` with the Python it already has:
  nothing to build) sits on the relay
  bridge and on the Actor's own internal network under the alias `llm-gateway`. It forwards
  every TCP connection on its port to the gateway's one address and port; it forwards nothing
  else and accepts nothing on the relay bridge side. The Actor network stays `internal`; it gets
  inter-container traffic on (icc) so the Actor can reach its relay (the only other container).
- The relay runs as hardened as an Actor (no capabilities, read-only root, no new privileges,
  a small memory and process limit, user nobody) and carries the Actor's labels, so the Actor's
  slot cleanup and `reap_stale` remove it with the Actor.

A validator that itself runs in a container on the daemon (docker.sock mounted) has no address on
the host's bridges: it joins the relay bridge and the gateway listens on its address there (not
exercised by the tests; the host-side path is, in tests/docker/test_llm_docker.py).

Why not the alternatives: the gateway on 0.0.0.0 would be on every interface; the gateway on an
Actor network's own host address is what the host guard exists to refuse; `network_mode=host`
for the relay cannot be combined with joining the Actor's network; a proxy inside the Actor's
image is the miner's code, not ours.
"""

from __future__ import annotations

from typing import Any, Mapping

RELAY_ALIAS = "llm-gateway"
RELAY_PORT = 8080
RELAY_BRIDGE_PREFIX = "snrly"  # + 10 hex: the kernel's 15-character interface name limit
RELAY_IMAGE = "python:3.11-slim"

# Run with `python -c RELAY_SCRIPT TARGET_HOST TARGET_PORT LISTEN_PORT`: a byte pipe per
# connection to one fixed address (no parsing: the gateway does all checking).
RELAY_SCRIPT = """
import asyncio, sys
host, port, listen = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        writer.close()
async def serve(reader, writer):
    try:
        up_reader, up_writer = await asyncio.open_connection(host, port)
    except OSError:
        writer.close()
        return
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
async def main():
    server = await asyncio.start_server(serve, "0.0.0.0", listen)
    print("relay ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def create_relay_bridge(client: Any, name: str, slot: str, labels: Mapping[str, str],
                        own_container: Any = None) -> tuple[Any, str]:
    """The run's relay bridge and the address the gateway must listen on: the bridge's host side,
    or, for a validator running in a container on this daemon (`own_container`), that container's
    address on the bridge (it joins it; relays then reach it as a neighbour, so icc is on)."""
    network = client.networks.create(
        name, driver="bridge", internal=True, check_duplicate=True, labels=dict(labels),
        options={"com.docker.network.bridge.name": RELAY_BRIDGE_PREFIX + slot,
                 "com.docker.network.bridge.enable_icc": "true" if own_container is not None else "false"},
    )
    if own_container is not None:
        return network, _joined_address(network, own_container)
    network.reload()
    configs = (network.attrs.get("IPAM") or {}).get("Config") or []
    address = next((c.get("Gateway") for c in configs if c.get("Gateway")), None)
    if not address:
        network.remove()
        raise RuntimeError(f"Docker gave the relay bridge {name} no host address")
    return network, address.split("/")[0]


def _joined_address(network: Any, container: Any) -> str:
    try:
        network.connect(container)
        container.reload()
        address = container.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
    except Exception:
        network.remove()
        raise
    return address


def ensure_image(client: Any, image: str) -> None:
    """The relay's image in the local store, pulled once when missing (before any round starts)."""
    import docker.errors

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        client.images.pull(*name_and_tag(image))


def name_and_tag(image: str) -> tuple[str, str]:
    """`python:3.11-slim` → (python, 3.11-slim); a registry's port is not a tag; no tag: latest."""
    if ":" not in image.rsplit("/", 1)[-1]:
        return image, "latest"
    name, _, tag = image.rpartition(":")
    return name, tag


def start_relay(client: Any, name: str, bridge: Any, actor_network: Any, target: tuple[str, int],
                labels: Mapping[str, str], image: str = RELAY_IMAGE) -> Any:
    """The Actor's relay: created on the relay bridge, joined to the Actor network as
    `llm-gateway`, then started (so it is in place before the Actor starts)."""
    container = client.containers.create(
        image, ["python3", "-c", RELAY_SCRIPT, target[0], str(target[1]), str(RELAY_PORT)],
        name=name, labels=dict(labels), network=bridge.name, user="65534:65534",
        cap_drop=["ALL"], security_opt=["no-new-privileges"], read_only=True,
        mem_limit="64m", memswap_limit="64m", pids_limit=32, nano_cpus=250_000_000,
        restart_policy={"Name": "no"}, log_config={"type": "json-file", "config": {"max-size": "256k"}},
        environment={"PYTHONDONTWRITEBYTECODE": "1"},
    )
    try:
        actor_network.connect(container, aliases=[RELAY_ALIAS])
        container.start()
    except Exception:
        container.remove(force=True)
        raise
    return container


def relay_url() -> str:
    """OPENAI_BASE_URL inside a Docker Actor."""
    return f"http://{RELAY_ALIAS}:{RELAY_PORT}/v1"
