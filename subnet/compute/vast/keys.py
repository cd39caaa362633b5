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

KEY_ENV = "VAST_API_KEY"
KEYRING_SERVICE = "vastai"
DOTENV_FILES = (".env.vast", ".env")


def resolve_vast_key(flag: str | None, home: Path | None = None) -> str | None:
    """The first key found in the order above, stripped; None when there is none."""
    for source in (lambda: flag, lambda: os.environ.get(KEY_ENV), _from_keyring,
                   lambda: _from_dotenv(home or Path.cwd()), _from_config_files):
        key = (source() or "").strip()
        if key:
            return key
    return None


def _from_keyring() -> str | None:
    try:
        import keyring  # optional: not a dependency of the package
    except ImportError:
        return None
    with contextlib.suppress(Exception):  # no backend, locked store: fall through to the files
        return keyring.get_password(KEYRING_SERVICE, KEY_ENV) or keyring.get_password(KEYRING_SERVICE, "api_key")
    return None


def _from_dotenv(folder: Path) -> str | None:
    from dotenv import dotenv_values  # python-dotenv: pydantic-settings' own dotenv reader

    for name in DOTENV_FILES:
        path = folder / name
        if path.is_file():
            value = dotenv_values(path).get(KEY_ENV)
            if value and value.strip():
                return value
    return None


def config_key_paths() -> list[Path]:
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path(xdg) / "vastai" / "vast_api_key", Path.home() / ".vast_api_key"]


def _from_config_files() -> str | None:
    for path in config_key_paths():
        with contextlib.suppress(OSError):
            text = path.read_text().strip()
            if text:
                return text
    return None
