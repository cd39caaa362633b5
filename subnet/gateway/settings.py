"""Gateway settings (pydantic-settings): what the operator sets, read from SUBNET_* variables.

The upstream key resolves SUBNET_LLM_API_KEY, then CHUTES_API_KEY, then the same names in `.env`.
It is a `SecretStr`: its repr and str are "**********", so it cannot reach a log line by accident;
the only place its value is read is `upstream_headers()`.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from subnet.gateway.pricing import Price, parse_configured_prices

# A mid-size open model served by Chutes (listed in its /v1/models; names there change, so
# operators set SUBNET_LLM_MODELS — see docs/gateway.md, "open facts").
DEFAULT_MODEL = "Qwen/Qwen3-32B-TEE"


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUBNET_", env_file=".env", extra="ignore",
                                      populate_by_name=True)

    llm_upstream: str = "https://llm.chutes.ai/v1"
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("SUBNET_LLM_API_KEY", "CHUTES_API_KEY"))
    # "public=upstream" pairs or bare names (public = upstream), comma separated.
    llm_models: str = DEFAULT_MODEL
    # "model=in/out" in USD per 1M tokens, comma separated; a model listed here ignores upstream pricing.
    llm_prices: str | None = None
    llm_task_budget_usd: float = 0.05
    llm_round_budget_usd: float = 0.50
    llm_concurrency: int = 64
    llm_max_tokens: int = 4096  # the clamp on a call's max_tokens (the reservation's completion part)
    llm_connect_timeout_s: float = 10.0
    llm_read_timeout_s: float = 120.0  # between two bytes of the upstream's answer
    llm_settle_wait_s: float = 5.0  # end_task waits this long for in-flight calls, then cancels them
    gateway_host: str = "127.0.0.1"
    gateway_port: int = 0
    gateway_public_url: str | None = None

    def model_map(self) -> dict[str, str]:
        """Public model name -> upstream model name (the allowlist)."""
        pairs: dict[str, str] = {}
        for item in (part.strip() for part in self.llm_models.split(",")):
            if not item:
                continue
            public, _, upstream = item.partition("=")
            pairs[public.strip()] = (upstream or public).strip()
        if not pairs:
            raise ValueError("SUBNET_LLM_MODELS names no model")
        return pairs

    def configured_prices(self) -> dict[str, Price]:
        return parse_configured_prices(self.llm_prices or "")

    def upstream_headers(self) -> dict[str, str]:
        headers = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
        if self.llm_api_key is not None:
            headers["authorization"] = f"Bearer {self.llm_api_key.get_secret_value()}"
        return headers
