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


def test_a_taken_port_is_one_line(tmp_path, twin):
    import asyncio
    import socket

    import pytest
    from prometheus_client import CollectorRegistry

    from subnet.gateway import Gateway, GatewayError
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = GatewaySettings(_env_file=None, llm_upstream=twin.url, llm_models="twin/echo", gateway_port=port)
        gw = Gateway(settings, usage_db=tmp_path / "u.sqlite", registry=CollectorRegistry())
        with pytest.raises(GatewayError, match=f"cannot listen on 127.0.0.1:{port}") as caught:
            asyncio.run(gw.start())
        assert "\n" not in str(caught.value)
