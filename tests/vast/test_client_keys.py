"""Where the Vast key comes from: flag → VAST_API_KEY → keyring → .env.vast / .env → vastai's config file."""

from __future__ import annotations

import sys
import types

import pytest

from subnet.compute.vast import resolve_vast_key


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A clean world: no env key, no keyring, an empty home and config folder."""
    home, cfg, work = tmp_path / "home", tmp_path / "cfg", tmp_path / "work"
    for d in (home, cfg, work):
        d.mkdir()
    monkeypatch.delenv("VAST_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(cfg))
    monkeypatch.setitem(sys.modules, "keyring", None)  # `import keyring` fails: not installed
    monkeypatch.chdir(work)
    return types.SimpleNamespace(home=home, cfg=cfg, work=work)


def config_file(place, key: str) -> None:
    (place.cfg / "vastai").mkdir(exist_ok=True)
    (place.cfg / "vastai" / "vast_api_key").write_text(key + "\n")


def fake_keyring(monkeypatch, key: str | None) -> None:
    module = types.ModuleType("keyring")
    module.get_password = lambda service, name: key if (service, name) == ("vastai", "VAST_API_KEY") else None
    monkeypatch.setitem(sys.modules, "keyring", module)


def test_each_source_in_order(place, monkeypatch):
    assert resolve_vast_key(None) is None
    (place.home / ".vast_api_key").write_text("legacy\n")
    assert resolve_vast_key(None) == "legacy"
    config_file(place, "from-config")
    assert resolve_vast_key(None) == "from-config"
    (place.work / ".env").write_text("OTHER=1\nVAST_API_KEY=from-dotenv\n")
    assert resolve_vast_key(None) == "from-dotenv"
    (place.work / ".env.vast").write_text("VAST_API_KEY='from-env-vast'\n")
    assert resolve_vast_key(None) == "from-env-vast"
    fake_keyring(monkeypatch, "from-keyring")
    assert resolve_vast_key(None) == "from-keyring"
    monkeypatch.setenv("VAST_API_KEY", " from-env ")
    assert resolve_vast_key(None) == "from-env"
    assert resolve_vast_key("from-flag") == "from-flag"


def test_each_source_is_named_where_it_was_found(place, monkeypatch):
    from subnet.compute.vast.keys import find_vast_key

    assert find_vast_key(None) == (None, "nowhere")
    (place.home / ".vast_api_key").write_text("legacy\n")
    assert find_vast_key(None) == ("legacy", str(place.home / ".vast_api_key"))
    config_file(place, "from-config")
    assert find_vast_key(None) == ("from-config", str(place.cfg / "vastai" / "vast_api_key"))
    (place.work / ".env").write_text("VAST_API_KEY=from-dotenv\n")
    assert find_vast_key(None) == ("from-dotenv", f"VAST_API_KEY in {place.work / '.env'}")
    fake_keyring(monkeypatch, "from-keyring")
    assert find_vast_key(None) == ("from-keyring", "the OS keyring (service 'vastai')")
    monkeypatch.setenv("VAST_API_KEY", "from-env")
    assert find_vast_key(None) == ("from-env", "VAST_API_KEY in the environment")
    assert find_vast_key("from-flag") == ("from-flag", "the --vast-key flag")


def test_empty_values_fall_through(place, monkeypatch):
    monkeypatch.setenv("VAST_API_KEY", "")
    (place.work / ".env.vast").write_text("VAST_API_KEY=\n")
    (place.work / ".env").write_text("VAST_API_KEY=from-dotenv\n")
    fake_keyring(monkeypatch, None)
    assert resolve_vast_key("  ") == "from-dotenv"


def test_the_dotenv_folder_is_the_one_given(place, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / ".env").write_text("VAST_API_KEY=in-other\n")
    assert resolve_vast_key(None) is None
    assert resolve_vast_key(None, home=other) == "in-other"


def test_a_broken_keyring_falls_through(place, monkeypatch):
    module = types.ModuleType("keyring")
    def locked(service, name):
        raise RuntimeError("no backend")
    module.get_password = locked
    monkeypatch.setitem(sys.modules, "keyring", module)
    config_file(place, "from-config")
    assert resolve_vast_key(None) == "from-config"


def test_without_xdg_the_default_config_folder(place, monkeypatch):
    monkeypatch.delenv("XDG_CONFIG_HOME")
    (place.home / ".config" / "vastai").mkdir(parents=True)
    (place.home / ".config" / "vastai" / "vast_api_key").write_text("default-config")
    assert resolve_vast_key(None) == "default-config"
