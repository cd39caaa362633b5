"""`subnet miner build | push | publish`: turn an env folder into a committed Actor image.

Exit codes: 0 done; 2 bad input (env folder, tag, repository); 1 Docker, build, push or chain
failure. Errors are one line on stderr; build and push progress goes to stderr too, so stdout
carries only the result (text, or one JSON object with --json).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn, Optional

import typer

from subnet.cli.miner_group import miner_app
from subnet.config import NETUID_MAX, Settings
from subnet.registry.client import LABEL_HOTKEY
from subnet.miner.build import BuildFailed, DockerUnavailable, build_env_image
from subnet.protocol.envdir import InvalidEnv
from subnet.miner.push import PushFailed, push_image
from subnet.runtime.images import InvalidTag

_QUIET = typer.Option(False, "--quiet", "-q", help="No build/push progress on stderr")
_JSON = typer.Option(False, "--json", help="Print one JSON object")


@miner_app.command("build")
def build(
    env_dir: Path = typer.Argument(..., metavar="ENV_DIR", help="Folder with env.py (class Actor) and a Dockerfile"),
    tag: str = typer.Option(..., "--tag", "-t", help="Local image name[:tag], e.g. my-env:dev"),
    hotkey: Optional[str] = typer.Option(None, "--hotkey", help="Hotkey address to label the image with (default: the wallet's)"),
    network: Optional[str] = typer.Option(None, "--network", help="Network the wallet's hotkey is for (default: SUBNET_NETWORK)"),
    wallet_name: Optional[str] = typer.Option(None, "--wallet.name", help="Wallet whose hotkey labels the image"),
    wallet_hotkey: str = typer.Option("default", "--wallet.hotkey", help="Hotkey name in the wallet"),
    wallet_path: Optional[str] = typer.Option(None, "--wallet.path", help="Wallets directory"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Build without Docker's layer cache"),
    quiet: bool = _QUIET,
    as_json: bool = _JSON,
) -> None:
    """Build ENV_DIR's Dockerfile plus the affinetes Actor server; print the image's content digest.

    With --hotkey or --wallet.name the image is labelled with your hotkey: validators then treat
    anyone else committing its digest as a copy, whoever commits first.
    The printed reference (local.invalid/NAME@sha256:<image id>) runs in local dry runs;
    to run on validators, push it (subnet miner push / publish).
    """
    owner = hotkey or (_hotkey_of(network, wallet_name, wallet_hotkey, wallet_path) if wallet_name else None)
    if owner is None and not quiet:
        typer.echo("note: no --hotkey/--wallet.name: the image carries no owner label", err=True)
    built = _build(env_dir, tag, no_cache, quiet, owner)
    payload = {"tag": built.tag, "image_id": built.image_id, "reference": built.reference}
    if owner:
        payload["hotkey"] = owner
    _emit(payload, as_json, f"built {built.tag}\n  content digest: {built.image_id}\n  reference: {built.reference}")


@miner_app.command("push")
def push(
    image: str = typer.Argument(..., metavar="IMAGE", help="Local image: name[:tag], image id, or a local.invalid reference"),
    repo: str = typer.Option(..., "--repo", help="Target REGISTRY/REPO[:tag], e.g. ghcr.io/me/my-env"),
    tag: Optional[str] = typer.Option(None, "--tag", help="Tag to push under (default: the --repo tag, else latest)"),
    quiet: bool = _QUIET,
    as_json: bool = _JSON,
) -> None:
    """Push IMAGE to REPO and print the digest-pinned reference to commit."""
    reference = _push(image, repo, tag, quiet)
    _emit({"reference": reference}, as_json, reference)


@miner_app.command("publish")
def publish(
    env_dir: Path = typer.Argument(..., metavar="ENV_DIR", help="Folder with env.py (class Actor) and a Dockerfile"),
    repo: str = typer.Option(..., "--repo", help="Target REGISTRY/REPO, e.g. ghcr.io/me/my-env"),
    tag: str = typer.Option("latest", "--tag", help="Tag to build and push under (never committed)"),
    netuid: Optional[int] = typer.Option(None, "--netuid", min=0, max=NETUID_MAX, help="Subnet uid (default: SUBNET_NETUID)"),
    network: Optional[str] = typer.Option(None, "--network", help="devchain, finney, test, local or ws:// URL (default: SUBNET_NETWORK)"),
    wallet_name: str = typer.Option("default", "--wallet.name", help="Wallet (coldkey) name"),
    wallet_hotkey: str = typer.Option("default", "--wallet.hotkey", help="Hotkey name in the wallet"),
    wallet_path: Optional[str] = typer.Option(None, "--wallet.path", help="Wallets directory"),
    no_cache: bool = typer.Option(False, "--no-cache", help="Build without Docker's layer cache"),
    quiet: bool = _QUIET,
    as_json: bool = _JSON,
) -> None:
    """Build ENV_DIR, push it to REPO, commit the pushed digest on chain (in that order).

    Nothing is committed unless the push succeeded; the commit's result is printed last.
    """
    if ":" in repo.rsplit("/", 1)[-1] or "@" in repo:
        _fail(f"--repo {repo!r}: give REGISTRY/REPO without a tag or digest (use --tag)", code=2)
    local_tag = f"{repo}:{tag}"
    network = network or Settings().network
    built = _build(env_dir, local_tag, no_cache, quiet, _hotkey_of(network, wallet_name, wallet_hotkey, wallet_path))
    typer.echo(f"built {built.tag} ({built.image_id})", err=True)
    reference = _push(built.image_id, repo, tag, quiet)
    typer.echo(f"pushed {reference}", err=True)
    commit_reference(reference, netuid, network, wallet_name, wallet_hotkey, wallet_path, as_json)


def commit_reference(reference: str, netuid: Optional[int], network: Optional[str], wallet_name: str,
                     wallet_hotkey: str, wallet_path: Optional[str], as_json: bool) -> None:
    """Commit through `subnet miner commit` (subnet.cli.miner_chain), so both paths behave alike."""
    from subnet.cli.miner_chain import commit

    commit(image_ref=reference, netuid=netuid, network=network, wallet_name=wallet_name,
           wallet_hotkey=wallet_hotkey, wallet_path=wallet_path, dry_run=False, as_json=as_json, no_verify=False)


def _hotkey_of(network: Optional[str], wallet_name: str, wallet_hotkey: str, wallet_path: Optional[str]) -> str:
    from subnet.chain.base import ChainError
    from subnet.chain.factory import wallet_hotkey_address

    try:
        return wallet_hotkey_address(network or Settings().network, wallet_name, wallet_hotkey, wallet_path)
    except ChainError as exc:
        _fail(str(exc), code=2)


def _build(env_dir: Path, tag: str, no_cache: bool, quiet: bool, hotkey: Optional[str] = None):
    log = None if quiet else (lambda line: typer.echo(line, err=True))
    labels = {LABEL_HOTKEY: hotkey} if hotkey else None
    try:
        return build_env_image(env_dir, tag, nocache=no_cache, log=log, labels=labels)
    except (InvalidEnv, InvalidTag) as exc:
        _fail(str(exc), code=2)
    except (DockerUnavailable, BuildFailed) as exc:
        _fail(str(exc))


def _push(image: str, repo: str, tag: Optional[str], quiet: bool) -> str:
    log = None if quiet else (lambda line: typer.echo(line, err=True))
    try:
        return push_image(image, repo, tag=tag, log=log)
    except InvalidTag as exc:
        _fail(str(exc), code=2)
    except (DockerUnavailable, PushFailed) as exc:
        _fail(str(exc))


def _emit(payload: dict, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(payload) if as_json else text)


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {' '.join(message.split())}", err=True)
    raise typer.Exit(code)
