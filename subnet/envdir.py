"""Static checks of a miner's env folder, without importing or running any of its code."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from subnet.protocol import EVALUATE_METHOD

_SKIP_DIRS = {"__pycache__", ".git", ".venv", "node_modules"}


class EnvDirError(ValueError):
    """The folder is not an affinetes Actor env; the message says what is missing."""


def validate_env_dir(env_dir: Path, need_dockerfile: bool = True) -> None:
    if not env_dir.is_dir():
        raise EnvDirError(f"{env_dir} is not a folder")
    env_file = env_dir / "env.py"
    if not env_file.is_file():
        raise EnvDirError(f"{env_dir.name}: no env.py")
    try:
        tree = ast.parse(env_file.read_bytes(), filename=str(env_file))
    except (SyntaxError, ValueError) as exc:
        raise EnvDirError(f"{env_dir.name}: env.py does not parse: {exc}") from None
    actor = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Actor"), None)
    if actor is None:
        raise EnvDirError(f"{env_dir.name}: env.py defines no class Actor")
    methods = {n.name for n in actor.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    if EVALUATE_METHOD not in methods:
        raise EnvDirError(f"{env_dir.name}: Actor has no {EVALUATE_METHOD}() method")
    if need_dockerfile and not (env_dir / "Dockerfile").is_file():
        raise EnvDirError(f"{env_dir.name}: no Dockerfile")


def content_digest(env_dir: Path) -> str:
    """sha256 over the folder's files (paths and bytes), the process runtime's image digest."""
    h = hashlib.sha256()
    for path in sorted(p for p in env_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(env_dir)
        if _SKIP_DIRS.intersection(rel.parts) or path.suffix == ".pyc":
            continue
        h.update(str(rel.as_posix()).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return "sha256:" + h.hexdigest()
