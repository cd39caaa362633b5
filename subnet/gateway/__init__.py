"""The validator's OpenAI-compatible LLM gateway: per-(round, miner) tokens, per-task and per-round
dollar budgets reserved before forwarding and settled from the upstream's usage, usage in SQLite,
Prometheus metrics. Operator docs: docs/gateway.md."""

from subnet.gateway.gateway import Gateway, GatewayError
from subnet.gateway.grants import LlmGrant
from subnet.gateway.settings import GatewaySettings

__all__ = ["Gateway", "GatewayError", "GatewaySettings", "LlmGrant"]
