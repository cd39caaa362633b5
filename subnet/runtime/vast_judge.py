"""Whose fault a Vast.ai instance's state is. Pure: instance rows in, a fault (or None) out.

Instance rows carry `actual_status` (what the container is: "loading" while the host pulls and
creates it, then "running", "exited", ...), `intended_status` (what we, or Vast, asked for:
"running" until someone stops it) and `status_msg` (the host's last word, e.g. the Docker daemon's
error) (vast-python `vastai/data/instance.py`; docs.vast.ai "Instances": statuses). By cause:
- the image cannot be pulled because it does not exist or is private, or its container exits by
  itself at start (intended still "running") → the miner (`start_failed`, with the host's message);
- the instance vanished, its machine went offline, it was stopped from outside (an interruptible
  box outbid: intended "stopped"), a host-side Docker or driver error, a box that never ran within
  the start budget → infrastructure: the miner is not blamed.
A message matching both kinds counts as the host's: blaming a miner needs proof.
"""

from __future__ import annotations

import re
from typing import Any

from subnet.protocol import FaultKind, InfraFault, MinerFault
from subnet.util.text import one_line

# The image itself is at fault (Docker daemon pull errors for a missing or private image).
_BAD_IMAGE = re.compile(r"manifest unknown|manifest for \S+ not found|pull access denied|repository does not exist"
                        r"|no such image|invalid reference format|unauthorized: authentication required"
                        r"|image not found|failed to pull image", re.I)
# The host is at fault, whatever else the message says.
_HOST = re.compile(r"no space left|nvidia|cuda|driver|port is already allocated|address already in use"
                   r"|i/o timeout|tls handshake|connection reset|temporary failure|network is unreachable"
                   r"|oci runtime|outbid|offline", re.I)
_STOPPED = {"exited", "stopped", "inactive", "dead", "created"}


def status_of(instance: Any) -> tuple[str, str, str]:
    actual = str(getattr(instance, "actual_status", None) or "").lower()
    intended = str(getattr(instance, "intended_status", None) or "").lower()
    message = one_line(str(getattr(instance, "status_msg", None) or ""), 300)
    return actual, intended, message


def is_running(instance: Any) -> bool:
    return instance is not None and status_of(instance)[0] == "running"


def outside_cause(instance: Any, name: str) -> InfraFault | None:
    """The instance is gone or stopped by something other than its image: infrastructure."""
    if instance is None:
        return InfraFault(f"instance {name} is gone from the account (machine lost or destroyed outside)")
    actual, intended, message = status_of(instance)
    said = f": {message}" if message else ""
    if "outbid" in message.lower() or (getattr(instance, "is_bid", False) and intended == "stopped"):
        return InfraFault(f"instance {name} was outbid and stopped{said}")
    if actual in ("offline", "unknown") or "offline" in message.lower():
        return InfraFault(f"instance {name}'s machine went offline{said}")
    if intended == "stopped" and actual != "running":
        return InfraFault(f"instance {name} was stopped from outside (status {actual or 'none'}){said}")
    if _HOST.search(message) and not is_running(instance):
        return InfraFault(f"instance {name} failed on its host{said}")
    return None


def judge_start(instance: Any, name: str, *, running_for: float | None, at_deadline: bool,
                boot_s: float, total_s: float) -> Exception | None:
    """While an instance starts: None (keep waiting), or the fault that ends its start."""
    infra = outside_cause(instance, name)
    if infra is not None:
        return infra
    actual, intended, message = status_of(instance)
    if _BAD_IMAGE.search(message):
        return MinerFault(FaultKind.START_FAILED, f"the image could not be pulled: {message}")
    if actual in _STOPPED and intended in ("running", ""):
        return MinerFault(FaultKind.START_FAILED, f"exited at start: {message or 'no message from the host'}")
    if not at_deadline:
        return None
    if running_for is not None:
        return MinerFault(FaultKind.START_FAILED, f"running but /health did not answer within {boot_s:g}s")
    return InfraFault(f"instance {name} was not running within {total_s:g}s (status {actual or 'none'}"
                      + (f": {message})" if message else ")"))


def judge_death(instance: Any, name: str) -> Exception | None:
    """After a call failed the way a dead box fails: None if the instance still runs (the fault is
    the Actor's own), else whose fault its end is."""
    infra = outside_cause(instance, name)
    if infra is not None:
        return infra
    if is_running(instance):
        return None
    actual, _, message = status_of(instance)
    return MinerFault(FaultKind.UNREACHABLE, f"the Actor's container stopped (status {actual or 'none'})"
                      + (f": {message}" if message else ""))
