"""A whole validator round on one machine: temporary devchain, local runtime, no Basilica.

Each env folder becomes a miner: a hotkey registered on a throwaway devchain that commits a
digest-pinned reference to its env's content. The validator then takes the production path:
read commitments, parse them strictly, resolve each digest to something the runtime can start,
run the round, score, and set weights on the devchain.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Sequence

from subnet.chain.devchain import DevChain
from subnet.challenges.matrix_chain import MatrixChain
from subnet.config import Settings
from subnet.envdir import content_digest
from subnet.store import Store
from subnet.validator.report import RoundReport
from subnet.validator.round import ProgressFn
from subnet.validator.service import Validator, plan_round

VALIDATOR_HOTKEY = "dry-run-validator"


def default_env_dirs() -> list[Path]:
    """Every folder in `envs/`: beside the package in a checkout, else in the working directory."""
    for root in (Path(__file__).resolve().parent.parent / "envs", Path.cwd() / "envs"):
        if root.is_dir():
            return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))
    return []


def repository_name(env_dir: Path) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", env_dir.name.lower()).strip("-")[:40] or "env"
    return f"dry-run/{slug}"


async def dry_run(env_dirs: Sequence[Path], runtime, settings: Settings, progress: ProgressFn | None = None) -> RoundReport:
    challenge = MatrixChain(n=settings.n, depth=settings.depth)
    with tempfile.TemporaryDirectory(prefix="subnet-dry-run-") as tmp:
        chain = DevChain(Path(tmp) / "devchain.sqlite", hotkey=VALIDATOR_HOTKEY)
        store = Store(Path(tmp) / "state.sqlite")
        try:
            chain.register(settings.netuid, VALIDATOR_HOTKEY, validator_permit=True)
            sources, labels = _commit_envs(chain, env_dirs, settings.netuid)
            source_for = getattr(runtime, "source_for", lambda ref, env_dir: env_dir)  # Basilica: image refs
            plan = plan_round(chain.commitments(settings.netuid), lambda ref: source_for(ref, sources[ref.digest]),
                              labels=labels)
            validator = Validator(chain, runtime, challenge, settings, store)
            return await validator.run_round(plan, os.urandom(32), progress)
        finally:
            store.close()
            chain.close()


def _commit_envs(chain: DevChain, env_dirs: Sequence[Path], netuid: int) -> tuple[dict[str, str], dict[str, str]]:
    sources: dict[str, str] = {}
    labels: dict[str, str] = {}
    for index, env_dir in enumerate(env_dirs):
        hotkey = f"miner{index}-{env_dir.name}"
        chain.register(netuid, hotkey)
        digest = content_digest(env_dir) if env_dir.is_dir() else "sha256:" + "0" * 64
        sources[digest] = str(env_dir)
        labels[digest] = env_dir.name
        chain.as_hotkey(hotkey).commit(netuid, f"{repository_name(env_dir)}@{digest}".encode())
    return sources, labels
