"""The gateway's Prometheus metrics, on a registry passed in (tests) or the default one (the
validator's /metrics serves it)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram


class GatewayMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = REGISTRY if registry is None else registry
        self.tokens = Counter("subnet_llm_tokens", "LLM tokens metered, by miner, model and kind "
                              "(prompt|completion)", ["miner", "model", "kind"], registry=registry)
        self.usd = Counter("subnet_llm_usd", "LLM dollars charged, by miner and model", ["miner", "model"],
                           registry=registry)
        self.upstream_seconds = Histogram("subnet_llm_upstream_seconds", "Upstream call time, request to last byte",
                                          registry=registry,
                                          buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
        self.refusals = Counter("subnet_llm_refusals", "Calls the gateway refused, by reason", ["reason"],
                                registry=registry)

    def charged(self, uid: int, model: str, usd: float, prompt_tokens: int | None,
                completion_tokens: int | None) -> None:
        miner = str(uid)
        self.usd.labels(miner, model).inc(max(usd, 0.0))
        if prompt_tokens:
            self.tokens.labels(miner, model, "prompt").inc(prompt_tokens)
        if completion_tokens:
            self.tokens.labels(miner, model, "completion").inc(completion_tokens)
