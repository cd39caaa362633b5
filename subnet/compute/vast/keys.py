"""Where the validator's Vast.ai API key comes from, in order (first non-empty wins):

1. the `--vast-key` flag (the caller passes it);
2. `VAST_API_KEY` in the environment (vast-python 1.9.1 `vastai/_base.py` `_resolve_api_key` step 2);
3. the OS keyring, service "vastai", if the `keyring` package is importable (not a dependency: the
   design documents name the keyring; operators who want it install it);
4. `VAST_API_KEY` in `.env.vast`, then in `.env`, in the given folder (default: the working directory);
5. `$XDG_CONFIG_HOME/vastai/vast_api_key`, `~/.config/vastai/vast_api_key` when XDG_CONFIG_HOME is
   unset, then the legacy `~/.vast_api_key` (`_resolve_api_key` steps 3 and 4: the files the
   official `vastai set api-key` writes).

The key is returned, never logged: callers hand it to `VastClient` only.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable

KEY_ENV = "VAST_API_KEY"
KEYRING_SERVICE = "vastai"
DOTENV_FILES = (".env.vast", ".env")


def resolve_vast_key(flag: str | None, home: Path | None = None) -> str | None:
    """The first key found in the order above, stripped; None when there is none."""
    return find_vast_key(flag, home)[0]


def find_vast_key(flag: str | None, home: Path | None = None) -> tuple[str | None, str]:
    """The first key found in the order above and where it was found ("nowhere" when none).
    The place may be shown to the operator (`subnet doctor`); the key never is."""
    sources = ((lambda: flag, "the --vast-key flag"),
               (lambda: os.environ.get(KEY_ENV), f"{KEY_ENV} in the environment"),
               (_from_keyring, f"the OS keyring (service {KEYRING_SERVICE!r})"))
    for source, where in sources:
        key = (source() or "").strip()
        if key:
            return key, where
    for where, read in (*_dotenv_sources(home or Path.cwd()), *_config_file_sources()):
        key = (read() or "").strip()
        if key:
            return key, where
    return None, "nowhere"


def _from_keyring() -> str | None:
    try:
        import keyring  # optional: not a dependency of the package
    except ImportError:
        return None
    with contextlib.suppress(Exception):  # no backend, locked store: fall through to the files
        return keyring.get_password(KEYRING_SERVICE, KEY_ENV) or keyring.get_password(KEYRING_SERVICE, "api_key")
    return None


def _dotenv_sources(folder: Path) -> list[tuple[str, Callable[[], str | None]]]:
    from dotenv import dotenv_values  # python-dotenv: pydantic-settings' own dotenv reader

    def read(path: Path) -> str | None:
        return dotenv_values(path).get(KEY_ENV) if path.is_file() else None

    return [(f"{KEY_ENV} in {folder / name}", lambda path=folder / name: read(path)) for name in DOTENV_FILES]


def config_key_paths() -> list[Path]:
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path(xdg) / "vastai" / "vast_api_key", Path.home() / ".vast_api_key"]


def _config_file_sources() -> list[tuple[str, Callable[[], str | None]]]:
    def read(path: Path) -> str | None:
        with contextlib.suppress(OSError):
            return path.read_text()
        return None

    return [(str(path), lambda path=path: read(path)) for path in config_key_paths()]
