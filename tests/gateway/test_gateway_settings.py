"""The upstream key's resolution order, and the allowlist's grammar."""

from __future__ import annotations

from subnet.gateway import GatewaySettings


def test_key_resolves_subnet_then_chutes_then_dotenv(tmp_path, monkeypatch):
    for name in ("SUBNET_LLM_API_KEY", "CHUTES_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    dotenv = tmp_path / ".env"
    dotenv.write_text("CHUTES_API_KEY=from-dotenv\n")
    assert GatewaySettings(_env_file=dotenv).llm_api_key.get_secret_value() == "from-dotenv"
    monkeypatch.setenv("CHUTES_API_KEY", "from-chutes")
    assert GatewaySettings(_env_file=dotenv).llm_api_key.get_secret_value() == "from-chutes"
    monkeypatch.setenv("SUBNET_LLM_API_KEY", "from-subnet")
    assert GatewaySettings(_env_file=dotenv).llm_api_key.get_secret_value() == "from-subnet"
    assert GatewaySettings(_env_file=dotenv, llm_api_key="flag").llm_api_key.get_secret_value() == "flag"
    monkeypatch.setenv("LLM_API_KEY", "unrelated")  # no other name is read
    monkeypatch.delenv("SUBNET_LLM_API_KEY")
    monkeypatch.delenv("CHUTES_API_KEY")
    assert GatewaySettings(_env_file=None).llm_api_key is None


def test_models_map_public_names_to_upstream_names():
    settings = GatewaySettings(_env_file=None, llm_models="small=org/Model-7B, org/Other ,")
    assert settings.model_map() == {"small": "org/Model-7B", "org/Other": "org/Other"}
