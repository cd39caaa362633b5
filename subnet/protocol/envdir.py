"""Static checks of a miner's env folder, and its content digest.

Miner code is never imported or executed here: `env.py` is parsed with `ast`, so a broken or
hostile env cannot run anything on the machine that checks it.
"""

from __future__ import annotations

import ast
import hashlib
import threading
from pathlib import Path

from subnet.protocol import EVALUATE_METHOD


# CPython 3.11 can fail `ast.parse` run in several threads at once ("SystemError: AST constructor
# recursion depth mismatch", gh-106905); dry runs validate many env folders concurrently.
_PARSE_LOCK = threading.Lock()


_SKIP_DIRS = {"__pycache__", ".git", ".venv", "node_modules"}


class InvalidEnv(ValueError):
    """The env folder cannot become an Actor image; the message says why in one line."""


def validate_env_dir(env_dir: Path, need_dockerfile: bool = True) -> Path:
    """Return the resolved env folder, or raise `InvalidEnv` naming the first problem.
    The process runtime runs env.py directly and passes `need_dockerfile=False`."""
    env_dir = Path(env_dir)
    if not env_dir.is_dir():
        raise InvalidEnv(f"{env_dir}: not a folder")
    env_dir = env_dir.resolve()
    env_py = env_dir / "env.py"
    if not env_py.is_file():
        raise InvalidEnv(f"{env_dir}: no env.py (the Actor lives in env.py)")
    if need_dockerfile and not (env_dir / "Dockerfile").is_file():
        raise InvalidEnv(f"{env_dir}: no Dockerfile (start from envs/matrix-chain-numpy/Dockerfile)")
    try:
        source = env_py.read_bytes()
        with _PARSE_LOCK:
            tree = ast.parse(source, filename=str(env_py))
    except SyntaxError as exc:
        raise InvalidEnv(f"{env_py}:{exc.lineno}: syntax error: {exc.msg}") from None
    except ValueError as exc:  # e.g. null bytes in the source
        raise InvalidEnv(f"{env_py}: not Python source: {exc}") from None
    actor = _module_class(tree, "Actor")
    if actor is None:
        raise InvalidEnv(f"{env_py}: no top-level `class Actor`")
    if not _has_method(actor, EVALUATE_METHOD):
        raise InvalidEnv(f"{env_py}:{actor.lineno}: class Actor has no `{EVALUATE_METHOD}` method")
    return env_dir


def _module_class(tree: ast.Module, name: str) -> ast.ClassDef | None:
    found = None
    for node in tree.body:  # the last definition wins, as it would at import time
        if isinstance(node, ast.ClassDef) and node.name == name:
            found = node
    return found


def _has_method(cls: ast.ClassDef, name: str) -> bool:
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return True
        # `evaluate = some_function` in the class body also defines the method
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return True
    return False


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
