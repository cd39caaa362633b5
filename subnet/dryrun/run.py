"""A whole validator round on one machine: temporary devchain, local runtime (or Basilica's twin).

Each env folder becomes a miner: a hotkey registered on a throwaway devchain that commits a
digest-pinned reference to its env's content. The validator then takes the production path:
read commitments, parse them strictly, resolve each digest to something the runtime can start,
run the round, score, and set weights on the devchain.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import statistics
import tempfile
from pathlib import Path
from typing import Any, Sequence

from subnet.chain.devchain import DevChain
from subnet.config import Settings
from subnet.protocol.envdir import content_digest
from subnet.state.store import Store
from subnet.dryrun.llm import any_needs_llm, by_challenge, dry_run_llm
from subnet.validator.challenge_choice import make_challenge
from subnet.validator.llm import LlmService
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


# Packages whose Docker image takes many minutes and gigabytes to build: a default dry run in
# Docker mode leaves such envs out (with a note) to stay quick; `--env DIR` still runs them.
HEAVY_IN_DOCKER = {"torch"}


def requirement_names(env_dir: Path) -> list[str]:
    """Distribution names in the env's requirements.txt (comments, options and pins dropped)."""
    path = env_dir / "requirements.txt"
    lines = path.read_text(errors="replace").splitlines() if path.is_file() else []
    names = (re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", ln.split("#")[0].strip()) for ln in lines)
    return [m.group(0).lower() for m in names if m]


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


def runnable_defaults(env_dirs: Sequence[Path], mode: str) -> tuple[list[Path], list[str]]:
    """The default env folders a quick dry run can run in `mode`, and a one-line note per skip.

    Process mode runs env.py with this Python, so an env needing a package it lacks is left out;
    Docker mode leaves out envs whose image installs a heavy package (HEAVY_IN_DOCKER)."""
    keep, notes = [], []
    for env_dir in env_dirs:
        names = requirement_names(env_dir)
        if mode in ("process", "basilica", "vast", "cloud"):  # the Basilica and Vast twins run env folders as processes
            missing = [n for n in names if not _installed(n)]
            fix = "pip install -e '.[torch]'" if missing == ["torch"] else f"pip install {' '.join(missing)}"
            why = f"needs {', '.join(missing)}, not installed in this Python ({fix})" if missing else ""
        else:
            heavy = sorted(HEAVY_IN_DOCKER.intersection(names))
            why = f"its image installs {', '.join(heavy)} (gigabytes, many minutes)" if heavy else ""
        if why:
            notes.append(f"skipped {env_dir.name}: {why}; run it with --env {env_dir}")
        else:
            keep.append(env_dir)
    return keep, notes


def repository_name(env_dir: Path) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", env_dir.name.lower()).strip("-")[:40] or "env"
    return f"dry-run/{slug}"


async def dry_run(env_dirs: Sequence[Path], runtime, settings: Settings, progress: ProgressFn | None = None,
                  llm: LlmService | None = None) -> list[RoundReport]:
    """One round per challenge the envs declare (a validator runs one challenge), in order."""
    reports = []
    for ident, group in by_challenge(env_dirs).items():
        challenge = make_challenge(ident, settings.n, settings.depth)
        reports.append(await _challenge_round(group, runtime, settings, challenge, progress, llm))
    return reports


async def _challenge_round(env_dirs: Sequence[Path], runtime, settings: Settings, challenge,
                           progress: ProgressFn | None, llm: LlmService | None) -> RoundReport:
    with tempfile.TemporaryDirectory(prefix="subnet-dry-run-") as tmp:
        chain = DevChain(Path(tmp) / "devchain.sqlite", hotkey=VALIDATOR_HOTKEY)
        store = Store(Path(tmp) / "state.sqlite")
        try:
            chain.register(settings.netuid, VALIDATOR_HOTKEY, validator_permit=True)
            sources, labels = _commit_envs(chain, env_dirs, settings.netuid)
            source_for = getattr(runtime, "source_for", lambda ref, env_dir: env_dir)  # Basilica: image refs
            plan = plan_round(chain.commitments(settings.netuid), lambda ref: source_for(ref, sources[ref.digest]),
                              labels=labels)
            # A validator's runtime serves its one challenge (SUBNET_CHALLENGE); a dry run's rounds may differ.
            getattr(runtime, "set_needs_gpu", lambda _needs: None)(bool(getattr(challenge, "needs_gpu", True)))
            validator = Validator(chain, runtime, challenge, settings, store, llm=llm)
            return await validator.run_round(plan, os.urandom(32), progress)
        finally:
            store.close()
            chain.close()


async def dry_run_rounds(
    env_dirs: Sequence[Path], runtime, settings: Settings, rounds: int, progress: ProgressFn | None = None,
    llm_upstream: str | None = None,
) -> list[RoundReport]:
    """`rounds` independent rounds (fresh tasks each), for telling a real change from noise; each
    round is one report per challenge. An LLM env's gateway serves every round."""
    llm_challenge = any_needs_llm(env_dirs, settings.n, settings.depth)
    if llm_challenge is None:
        return [r for _ in range(rounds) for r in await dry_run(env_dirs, runtime, settings, progress)]
    with tempfile.TemporaryDirectory(prefix="subnet-dry-run-llm-") as tmp:
        async with dry_run_llm(runtime, llm_challenge, Path(tmp), llm_upstream) as llm:
            return [r for _ in range(rounds) for r in await dry_run(env_dirs, runtime, settings, progress, llm)]


def spread(reports: Sequence[RoundReport]) -> list[dict[str, Any]]:
    """Per env over the rounds: the range of its p50 latency, score, weight and accuracy."""
    by_env: dict[str, list] = {}
    for report in reports:
        for miner in report.miners:
            by_env.setdefault(miner.env, []).append(miner)
    rows = []
    for env, miners in by_env.items():
        p50s = [m.latency_ms_p50 for m in miners if m.latency_ms_p50 is not None]
        rows.append({
            "env": env,
            "rounds": len(miners),
            "p50_ms_min": min(p50s, default=None),
            "p50_ms_median": statistics.median(p50s) if p50s else None,
            "p50_ms_max": max(p50s, default=None),
            "score_min": min(m.score for m in miners),
            "score_max": max(m.score for m in miners),
            "weight_min": min(m.weight for m in miners),
            "weight_max": max(m.weight for m in miners),
            "accuracy_min": min(m.accuracy for m in miners),
        })
    return sorted(rows, key=lambda r: -r["weight_max"])


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
