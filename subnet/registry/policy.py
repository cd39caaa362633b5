"""Which registries a validator will pull from.

A commitment names a registry host, and the validator's Docker daemon (or Basilica) goes and
fetches from it. Left alone, a miner could point validators at `localhost:5000`, `10.0.0.1`, the
cloud metadata address `169.254.169.254`, or a name that resolves to any of those. Refused by
default: loopback, private, link-local and other non-global addresses — literal or resolved —
and the bare `localhost`, `*.localhost`, `*.internal`, `*.local` and single-label names.
`SUBNET_ALLOWED_REGISTRIES` (host or host:port) lets an operator allow one anyway (an in-house
mirror). A name that does not resolve is not refused here: the pull fails as infrastructure.

Resolution goes through a function the caller passes, so tests never touch DNS. A name can
resolve differently for the daemon a moment later (DNS rebinding); this check raises the bar,
the daemon's own network policy is the last line.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from typing import Callable, Iterable, Sequence

Resolver = Callable[[str], Iterable[str]]

_LOCAL_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa")


class RegistryRefused(ValueError):
    """The registry is not one this validator pulls from; the message says why in one line."""


def split_host(registry: str) -> tuple[str, int | None]:
    host, _, port = registry.rpartition(":") if registry.count(":") == 1 else (registry, "", "")
    return host.lower(), (int(port) if port.isdigit() else None)


def address_problem(address: str) -> str | None:
    """Why an IP address is not a public registry's (None when it is global)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_private:
        return "private"
    if not ip.is_global or ip.is_multicast:
        return "non-public"
    return None


def is_loopback_registry(registry: str) -> bool:
    """`localhost[:port]` or a loopback address: a registry on this machine (dev setups)."""
    host, _ = split_host(registry)
    return host == "localhost" or address_problem(host) == "loopback"


def check_registry(registry: str, allowed: Sequence[str] = (), resolve: Resolver | None = None) -> None:
    """Raise `RegistryRefused` unless validators may pull from `registry` (`host[:port]`)."""
    host, _ = split_host(registry)
    if registry.lower() in {a.lower() for a in allowed} or host in {a.lower() for a in allowed}:
        return
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        raise RegistryRefused(f"registry {registry} is a local name; validators only pull from public registries")
    literal = address_problem(host)
    if literal:
        raise RegistryRefused(f"registry {registry} is a {literal} address; validators only pull from public registries")
    try:
        ipaddress.ip_address(host)
        return  # a public literal address
    except ValueError:
        pass
    if "." not in host:
        raise RegistryRefused(f"registry {registry} is a bare host name; name a public registry")
    for address in (resolve or system_resolver)(host):
        problem = address_problem(address)
        if problem:
            raise RegistryRefused(
                f"registry {registry} resolves to {address}, a {problem} address; validators only pull from public registries"
            )


def system_resolver(host: str) -> list[str]:
    """The addresses `host` resolves to here (empty when it does not resolve)."""
    try:
        return sorted({info[4][0] for info in socket.getaddrinfo(host, None)})
    except (socket.gaierror, UnicodeError, OSError):
        return []


class CachingResolver:
    """Resolves each host at most once per `ttl_s` (a round checks every commitment)."""

    def __init__(self, resolve: Resolver = system_resolver, ttl_s: float = 600.0, clock=time.monotonic) -> None:
        self._resolve = resolve
        self._ttl = ttl_s
        self._clock = clock
        self._seen: dict[str, tuple[float, list[str]]] = {}

    def __call__(self, host: str) -> list[str]:
        now = self._clock()
        hit = self._seen.get(host)
        if hit is None or now - hit[0] > self._ttl:
            hit = self._seen[host] = (now, list(self._resolve(host)))
        return hit[1]
