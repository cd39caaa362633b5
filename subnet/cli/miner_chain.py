"""`subnet miner commit`: publish a digest-pinned image reference as this hotkey's commitment.

Exit codes: 0 committed (or valid, with --dry-run); 2 the reference or an option is invalid;
1 the chain refused or could not be reached. Errors are one line on stderr.
"""

from __future__ import annotations

import json
from typing import NoReturn, Optional

import typer

from subnet.chain.base import ChainError, ChainUnavailable, NotRegistered
from subnet.cli.miner_group import miner_app
from subnet.protocol.commitment import InvalidCommitment, parse_image_ref
from subnet.config import Settings

_NETWORK_HELP = "devchain (local SQLite chain), finney, test, local, or a ws:// URL (default: SUBNET_NETWORK)"


@miner_app.command("commit")
def commit(
    image_ref: str = typer.Argument(..., metavar="IMAGE_REF", help="registry/repo[:tag]@sha256:<64 hex>"),
    netuid: Optional[int] = typer.Option(None, "--netuid", help="Subnet uid (default: SUBNET_NETUID)"),
    network: Optional[str] = typer.Option(None, "--network", help=_NETWORK_HELP),
    wallet_name: str = typer.Option("default", "--wallet.name", help="Wallet (coldkey) name"),
    wallet_hotkey: str = typer.Option("default", "--wallet.hotkey", help="Hotkey name in the wallet"),
    wallet_path: Optional[str] = typer.Option(None, "--wallet.path", help="Wallets directory (default: ~/.bittensor/wallets)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and show what would be committed; no wallet, no network"),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object"),
    no_verify: bool = typer.Option(False, "--no-verify", help="Skip checking that the registry has the image"),
) -> None:
    """Commit IMAGE_REF on chain, signed by the wallet's hotkey.

    First checks that IMAGE_REF's registry has that digest (a local image id committed by
    mistake would show as a fault on every validator) and that the image's owner label, if any,
    names this hotkey. On the devchain the identity is WALLET/HOTKEY and is registered
    automatically (printed).
    """
    settings = Settings()
    netuid = settings.netuid if netuid is None else netuid
    network = network or settings.network
    try:
        parse_image_ref(image_ref)
    except InvalidCommitment as exc:
        _fail(f"invalid image reference: {exc}", code=2)
    data = image_ref.encode("ascii")
    payload: dict = {"netuid": netuid, "network": network, "data": image_ref, "bytes": len(data)}
    if dry_run:
        _emit(payload, as_json, f"would commit {image_ref} ({len(data)} bytes) on netuid {netuid} ({network})")
        return

    try:
        chain = _open(network, wallet_name, wallet_hotkey, wallet_path, settings)
        hotkey = chain.hotkey
        if not no_verify:
            verify_in_registry(image_ref, hotkey, local_chain=network == "devchain")
        _register_on_devchain(chain, netuid)
        block = chain.commit(netuid, data)
    except NotRegistered as exc:
        _fail(
            f"{exc}; register it first: btcli subnets register --netuid {netuid} "
            f"-w {wallet_name} -H {wallet_hotkey} --network {network}"
        )
    except ChainUnavailable as exc:
        _fail(f"chain unavailable: {exc}")
    except (ChainError, ValueError) as exc:
        _fail(str(exc))
    payload.update(hotkey=hotkey, block=block)
    _emit(payload, as_json, f"committed {image_ref} for {hotkey} on netuid {netuid} ({network}) at block {block}")


def registry_client():
    """The client `verify_in_registry` uses (tests point it at an in-process transport)."""
    from subnet.registry.client import RegistryClient

    return RegistryClient()


def verify_in_registry(image_ref: str, hotkey: str, local_chain: bool = False) -> None:
    """Fail (one line) unless the registry has the digest and its owner label, if any, is `hotkey`.

    On the devchain (`local_chain`) only registries on this machine are asked: a local loop must
    not go out to public registries for references that often name nothing real."""
    from subnet.util import aio
    from subnet.protocol import InfraFault, MinerFault
    from subnet.registry.policy import is_loopback_registry
    from subnet.runtime.images import is_local

    ref = parse_image_ref(image_ref)
    if is_local(ref):
        return verify_in_local_store(ref, local_chain)
    if local_chain and not is_loopback_registry(ref.registry):
        return  # a devchain reference outside this machine: nothing to ask

    async def facts():
        client = registry_client()
        try:
            return await client.facts(ref)
        finally:
            await client.close()

    try:
        found = aio.run(facts())
    except MinerFault as exc:
        _fail(f"not committed: {exc.detail} (commit the digest `subnet miner push` printed, not the local image id)")
    except InfraFault as exc:
        _fail(f"not committed: cannot verify {ref.pinned}: {exc}; retry, or commit it unverified: "
              f"subnet miner commit {ref.pinned} --no-verify (with the same --network and --wallet options)")
    if found.hotkey and found.hotkey != hotkey:
        _fail(f"not committed: the image is labelled for hotkey {found.hotkey}, not {hotkey}; "
              "validators would score this commitment as a copy")


def verify_in_local_store(ref, local_chain: bool) -> None:
    """A `local.invalid/…@sha256:<image id>` reference names an image in this machine's Docker
    store (`subnet miner build` prints it): only the devchain takes one, and only if it exists."""
    from subnet.miner.build import DockerUnavailable, docker_client
    from subnet.runtime.images import find_local

    if not local_chain:
        _fail(f"not committed: {ref.pinned} exists only on this machine (local.invalid); push the image "
              f"(subnet miner push IMAGE --repo REGISTRY/REPO) and commit the digest it prints", code=2)
    try:
        found = find_local(docker_client(), ref)
    except Exception as exc:  # noqa: BLE001 - no daemon, or it failed: either way nothing is known
        why = exc if isinstance(exc, DockerUnavailable) else f"{type(exc).__name__}: {exc}"
        _fail(f"not committed: cannot check the local Docker store for {ref.digest[:19]}…: {why}; "
              "start Docker, or add --no-verify to `subnet miner commit`")
    if found is None:
        _fail(f"not committed: no image {ref.digest} in the local Docker store; build it with "
              f"`subnet miner build DIR --tag NAME --json` and commit the \"reference\" it prints")


def _open(network: str, wallet_name: str, wallet_hotkey: str, wallet_path: Optional[str], settings: Settings):
    from subnet.chain.factory import open_chain

    return open_chain(network, wallet_name, wallet_hotkey, wallet_path, settings)


def _register_on_devchain(chain, netuid: int) -> None:
    """A single-machine loop should just work: the devchain registers the miner for free."""
    from subnet.chain.factory import DEVCHAIN, ensure_devchain_registered

    if getattr(chain, "network", None) != DEVCHAIN:
        return
    uid, new = ensure_devchain_registered(chain, netuid)
    if new:
        typer.echo(f"devchain: registered {chain.hotkey} as uid {uid} on netuid {netuid}", err=True)


def _emit(payload: dict, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(payload) if as_json else text)


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)
