"""Who this validator is, for owning the things it creates (containers, networks, deployments).

The identity is a random id kept in the state directory (`SUBNET_HOME/validator-id`), made once.
It is not the host name (validators in containers share one daemon and may share a host name) nor
a PID (PIDs are reused, and PID 1 in a container is every restart's PID). Two validators with
different state directories never share an id; one validator keeps its id across restarts, so
after a crash it finds and removes exactly what it left behind.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

_FILE = "validator-id"
_VALID = re.compile(r"^[0-9a-f]{12}$")


def validator_identity(home: Path) -> str:
    """This state directory's validator id: 12 lowercase hex digits (DNS- and label-safe)."""
    path = Path(home).expanduser() / _FILE
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if _VALID.match(value):
        return value
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh = secrets.token_hex(6)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:  # a concurrent first start, or a damaged file: settle on what is there
        value = path.read_text().strip()
        if _VALID.match(value):
            return value
        path.write_text(fresh + "\n")
        return fresh
    with os.fdopen(fd, "w") as out:
        out.write(fresh + "\n")
    return fresh
