"""`subnet doctor`: is this machine ready to mine or validate? One line per check, with the fix.

Each check is ok, warn or fail; the command exits 1 only when something fails. Basilica and Docker
are warnings when absent (a validator can run with either runtime, a miner needs neither for
chain work) but failures when configured and broken.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Optional
from urllib.parse import urlsplit

import typer
from rich.console import Console

# A one-command app (tests invoke it directly); `subnet.cli._register` mounts `doctor` as `subnet doctor`.
doctor_app = typer.Typer(help="Check Python, Docker, Basilica, Vast.ai, wallet, chain endpoint and disk.")

NETWORKS = {
    "finney": "wss://entrypoint-finney.opentensor.ai:443",
    "test": "wss://test.finney.opentensor.ai:443",
    "local": "ws://127.0.0.1:9944",
}
MIN_FREE_GIB, WARN_FREE_GIB = 1.0, 5.0


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""


def check_python(version: tuple = tuple(sys.version_info[:3])) -> Check:
    shown = ".".join(map(str, version))
    if version >= (3, 10):
        return Check("python", "ok", f"Python {shown}")
    return Check("python", "fail", f"Python {shown} is older than 3.10", "install Python 3.10+ and recreate the venv")


def check_docker() -> Check:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        version = client.version().get("Version", "?")
        client.close()
        return Check("docker", "ok", f"Docker daemon {version} answers")
    except Exception as exc:  # noqa: BLE001 - any failure means "no usable daemon"
        return Check("docker", "warn", f"no Docker daemon answers ({type(exc).__name__})",
                     "start Docker (needed for local Docker mode and miner builds)")


def check_basilica(api_key: str | None = None) -> list[Check]:
    from subnet.compute.basilica import BasilicaGPUClient
    from subnet.compute.errors import BasilicaError
    from subnet.compute.policy import money
    from subnet.compute.settings import ConfigError, load_settings

    try:
        settings = load_settings(api_key=api_key, retries=1, timeout=10)
        settings.token()
    except ConfigError as exc:
        status = "warn" if "no Basilica API token" in str(exc) else "fail"
        return [Check("basilica", status, str(exc), "export BASILICA_API_TOKEN=... (needed for Basilica mode only)")]
    try:
        bal = BasilicaGPUClient(settings).balance()
    except BasilicaError as exc:
        fix = "check BASILICA_API_URL and BASILICA_API_TOKEN"
        return [Check("basilica", "fail", f"{settings.api_url}: {exc}", fix)]
    token = Check("basilica", "ok", f"token accepted by {settings.api_url}")
    # Deployments take no offering id and no price: the cap chooses the GPU, it cannot bound the bill.
    cap = Check("basilica-price-cap", "warn",
                f"BASILICA_MAX_HOURLY_RATE {money(settings.cap)}/h picks the GPU for deployments but Basilica "
                "takes no price cap on them; recorded prices are estimates",
                "bound spend with SUBNET_MAX_ROUND_SPEND and SUBNET_MIN_BALANCE (docs/operator.md)")
    if bal["balance"] <= 0:
        return [token, Check("basilica-balance", "warn", f"balance {money(bal['balance'])}", "top up the account"), cap]
    return [token, Check("basilica-balance", "ok", f"balance {money(bal['balance'])}"), cap]


def check_vast(flag: str | None = None) -> list[Check]:
    """Key found (and where from), API reachable, balance, and the cap every Vast rental is held to."""
    import asyncio

    from subnet.compute.policy import PolicyFormatError, money
    from subnet.compute.providers import cap_variable, load_policy
    from subnet.compute.vast import VastAuthError, VastClient, VastError
    from subnet.compute.vast.keys import find_vast_key

    try:
        cap = load_policy().max_hourly_rate
    except PolicyFormatError as exc:
        return [Check("vast-price-cap", "fail", str(exc), "set SUBNET_MAX_HOURLY_RATE to dollars per hour, e.g. 0.44")]
    key, source = find_vast_key(flag)
    if key is None:
        return [Check("vast", "warn", "no Vast API key (looked in --vast-key, VAST_API_KEY, the keyring, .env.vast, "
                      ".env and the vastai config file)", "export VAST_API_KEY=... (needed for Vast mode only)")]

    async def balance():
        async with VastClient(key, timeout=10.0, retries=1) as client:
            return client.base_url, await client.balance()

    try:
        url, amount = asyncio.run(balance())
    except VastAuthError as exc:
        return [Check("vast", "fail", f"key from {source} refused: {exc}",
                      "check VAST_API_KEY (vast.ai: Account → Keys)")]
    except VastError as exc:
        return [Check("vast", "fail", f"key from {source}; API not reachable: {exc}", "check VAST_URL and the network")]
    named = cap_variable()
    cap_check = Check("vast-price-cap", "ok" if named else "warn",
                      f"{named or 'default'} {money(cap)}/h caps every Vast box: in the search on demand (dph_total), "
                      "as the bid on interruptible boxes", "" if named else "set SUBNET_MAX_HOURLY_RATE")
    balance_check = Check("vast-balance", "ok" if amount > 0 else "warn", f"balance {money(amount)}",
                          "" if amount > 0 else "add credit at vast.ai (Billing)")
    return [Check("vast", "ok", f"key from {source} accepted by {url}"), balance_check, cap_check]


def check_wallet(name: str, hotkey: str, path: Path, network: str) -> Check:
    hotkey_file = path.expanduser() / name / "hotkeys" / hotkey
    if hotkey_file.is_file():
        return Check("wallet", "ok", f"hotkey {hotkey_file}")
    # The embedded devchain makes its own keys, so a missing wallet only matters on a real chain.
    status = "warn" if network == "devchain" else "fail"
    return Check("wallet", status, f"no hotkey at {hotkey_file}",
                 f"btcli wallet new-hotkey -w {name} -H {hotkey}")


def chain_url(network: str) -> str:
    return NETWORKS.get(network, network)


def check_chain(network: str, timeout: float = 3.0) -> Check:
    if network == "devchain":
        return Check("chain", "ok", "devchain (embedded, nothing to reach)")
    url = chain_url(network)
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return Check("chain", "fail", f"network {network!r} is not finney, test, local, devchain or a ws(s):// URL",
                     "set SUBNET_NETWORK to one of those")
    port = parts.port or (443 if parts.scheme == "wss" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return Check("chain", "ok", f"{url} reachable")
    except OSError as exc:
        return Check("chain", "fail", f"cannot reach {url}: {exc.strerror or exc}",
                     "check the network/firewall or point SUBNET_NETWORK at a reachable node")


def check_disk(home: Path) -> Check:
    probe = home.expanduser()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent  # the state dir may not exist yet: measure where it will be created
    free = shutil.disk_usage(probe).free / 2**30
    if not os.access(probe, os.W_OK):
        return Check("disk", "fail", f"{probe} is not writable", "fix permissions or set SUBNET_HOME")
    if free < MIN_FREE_GIB:
        return Check("disk", "fail", f"{free:.1f} GiB free at {probe}", "free disk space or set SUBNET_HOME")
    if free < WARN_FREE_GIB:
        return Check("disk", "warn", f"{free:.1f} GiB free at {probe}", "free disk space soon")
    return Check("disk", "ok", f"{free:.1f} GiB free at {probe}")


def check_spend(home: Path) -> list[Check]:
    """What the spend ledger says was spent, and whether that figure is billed or an estimate."""
    path = home.expanduser() / "state.sqlite"
    if not path.exists():
        return []
    import time

    from subnet.compute.ledger import Ledger, spend_of

    with Ledger(path) as ledger:
        spent = spend_of(ledger.entries(), time.time())
    return [Check("basilica-spend", "ok", f"{spent.describe()} in {path}")]


def run_checks(wallet_name: str, wallet_hotkey: str, wallet_path: Path, network: str, home: Path,
               api_key: str | None = None, vast_key: str | None = None) -> list[Check]:
    return [
        check_python(),
        check_docker(),
        *check_basilica(api_key),
        *check_vast(vast_key),
        *check_spend(home),
        check_wallet(wallet_name, wallet_hotkey, wallet_path, network),
        check_chain(network),
        check_disk(home),
    ]


@doctor_app.command()
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")] = False,
    # Same flags as `subnet validator run`; the env vars serve unattended checks.
    wallet_name: Annotated[
        str, typer.Option("--wallet.name", "--wallet-name", envvar="SUBNET_WALLET_NAME")
    ] = "default",
    wallet_hotkey: Annotated[
        str, typer.Option("--wallet.hotkey", "--wallet-hotkey", envvar="SUBNET_WALLET_HOTKEY")
    ] = "default",
    wallet_path: Annotated[
        Path, typer.Option("--wallet.path", "--wallet-path", envvar="SUBNET_WALLET_PATH")
    ] = Path("~/.bittensor/wallets"),
    network: Annotated[
        Optional[str],
        typer.Option("--network", help="devchain, finney, test, local or ws(s):// [default: SUBNET_NETWORK]"),
    ] = None,
    api_key: Annotated[Optional[str], typer.Option("--api-key", help="Basilica token.", show_default=False)] = None,
    vast_key: Annotated[Optional[str], typer.Option("--vast-key", help="Vast.ai key.", show_default=False)] = None,
) -> None:
    """Check Python, Docker, Basilica, wallet, chain endpoint and disk; exit 1 if any check fails."""
    from pydantic import ValidationError

    from subnet.config import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        typer.echo(f"error: bad SUBNET_* setting: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from None
    checks = run_checks(wallet_name, wallet_hotkey, wallet_path, network or settings.network, settings.home, api_key,
                        vast_key)
    failed = any(c.status == "fail" for c in checks)
    if as_json:
        typer.echo(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        _render(checks)
    raise typer.Exit(1 if failed else 0)


def _render(checks: list[Check]) -> None:
    console = Console(soft_wrap=True)
    marks = {"ok": "[green]ok  [/green]", "warn": "[yellow]warn[/yellow]", "fail": "[red]FAIL[/red]"}
    for c in checks:
        fix = f"  -> {c.fix}" if c.fix and c.status != "ok" else ""
        console.print(f"{marks[c.status]} {c.name:<16} {c.detail}{fix}", highlight=False)
