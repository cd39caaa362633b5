"""Load a miner's env.py as affinetes does, with its folder as a package root, and say why it failed.

Standard library only: this file's source is also copied into every Actor image's `serve.py`
(see `subnet.miner.wrapper`), so the process runtime and a built image load an env identically.
The env folder goes first on `sys.path`, as a script's own folder does, so `env.py` may import a
sibling module (`import helper`) or a subpackage (`from kernels import matmul`). A failure prints
one line, FAILURE_PREFIX + "<Type>: <message> (at <file>:<line>)", naming the innermost line of
the env's own code, and the server exits: that last line is the reason a validator reports.
"""

import importlib.util
import os
import sys
import traceback

FAILURE_PREFIX = "env failed to load: "
EXIT_CODE = 3


class EnvLoadFailed(Exception):
    """env.py (or a module it imports) raised while loading; str() is the one-line reason."""


def _where(exc, env_dir):
    """'file:line' of the innermost frame inside env_dir (relative), else of the innermost frame."""
    if isinstance(exc, SyntaxError) and exc.filename:
        frames = [(exc.filename, exc.lineno)]
    else:
        frames = [(f.filename, f.lineno) for f in traceback.extract_tb(exc.__traceback__)]
    root = os.path.realpath(env_dir) + os.sep
    own = [(p, n) for p, n in frames if os.path.realpath(p).startswith(root)]
    if not (own or frames):
        return "?"
    path, line = (own or frames)[-1]
    path = os.path.relpath(os.path.realpath(path), root) if own else path
    return f"{path}:{line}"


def describe(exc, env_dir):
    message = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {message} (at {_where(exc, env_dir)})"


def load_env(env_file):
    """Import env_file as the module `user_env` with its folder first on sys.path."""
    env_dir = os.path.dirname(os.path.abspath(env_file))
    if env_dir not in sys.path:
        sys.path.insert(0, env_dir)
    try:
        spec = importlib.util.spec_from_file_location("user_env", env_file)
        module = importlib.util.module_from_spec(spec)
        sys.modules["user_env"] = module
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - SystemExit at import is a failure to report too
        sys.modules.pop("user_env", None)
        raise EnvLoadFailed(describe(exc, env_dir)) from exc
    return module


def install(http_server, module):
    """Point affinetes' server template at an already loaded env module."""

    def load_user_env():
        http_server.user_module = module
        http_server.user_actor = None

    http_server._load_user_env = load_user_env


def load_or_exit(env_file):
    """load_env, or print the one-line reason to stderr and exit with EXIT_CODE."""
    try:
        return load_env(env_file)
    except EnvLoadFailed as exc:
        print(FAILURE_PREFIX + str(exc), file=sys.stderr, flush=True)
        sys.exit(EXIT_CODE)
