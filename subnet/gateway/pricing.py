"""Prices and the worst-case size of a call (pure).

Prices are USD per 1M tokens. Upstream prices come from the upstream's `GET /v1/models` in Chutes'
shape: each model has `pricing: {"prompt": 0.104, "completion": 0.416, ...}` as numbers in USD per
1M tokens, corroborated by `price: {"input": {"usd": 0.104}, "output": {"usd": 0.416}}` (snapshot of
https://llm.chutes.ai/v1/models in Veightor/chutes-agent-toolkit: data/chutes-models.json).
OpenRouter-style listings give `pricing` as strings in USD per token; that form is not told apart
safely from Chutes' by the numbers alone, so string prices are refused and such an upstream needs
SUBNET_LLM_PRICES.
"""

from __future__ import annotations

from dataclasses import dataclass

PER_MESSAGE_TOKENS = 16  # chat-template tokens a message may add (role markers, separators)
PER_CALL_TOKENS = 64  # the template's fixed part (system preamble, generation prompt)


@dataclass(frozen=True)
class Price:
    prompt_per_m: float
    completion_per_m: float

    def usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.prompt_per_m + completion_tokens * self.completion_per_m) / 1e6


def parse_configured_prices(text: str) -> dict[str, Price]:
    """ "model=0.1/0.4,other=1/2" -> prices; a malformed entry raises ValueError naming it."""
    prices: dict[str, Price] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        model, _, pair = entry.rpartition("=")
        prompt, _, completion = pair.partition("/")
        try:
            price = Price(float(prompt), float(completion))
        except ValueError:
            raise ValueError(f"SUBNET_LLM_PRICES entry {entry!r} is not model=in/out (USD per 1M tokens)") from None
        if not model or price.prompt_per_m < 0 or price.completion_per_m < 0:
            raise ValueError(f"SUBNET_LLM_PRICES entry {entry!r} is not model=in/out (USD per 1M tokens)")
        prices[model] = price
    return prices


def _usd_field(listing: dict, side: str) -> float | None:
    value = (listing.get("price") or {}).get(side)
    value = value.get("usd") if isinstance(value, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def price_from_listing(listing: dict) -> Price | None:
    """One `/v1/models` entry -> its price, or None when it has none we can trust."""
    pricing = listing.get("pricing")
    if not isinstance(pricing, dict):
        return None
    prompt, completion = pricing.get("prompt"), pricing.get("completion")
    # Strings are the per-token form (OpenRouter); only numbers are Chutes' per-1M form.
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in (prompt, completion)):
        return None
    usd_in, usd_out = _usd_field(listing, "input"), _usd_field(listing, "output")
    if usd_in is not None and abs(usd_in - prompt) > 1e-9 * max(1.0, prompt):
        return None  # the two fields disagree: the unit is not what we think
    if usd_out is not None and abs(usd_out - completion) > 1e-9 * max(1.0, completion):
        return None
    return Price(float(prompt), float(completion))


def prices_from_listing(body: object) -> dict[str, Price]:
    data = body.get("data") if isinstance(body, dict) else None
    prices: dict[str, Price] = {}
    for listing in data if isinstance(data, list) else []:
        if isinstance(listing, dict) and isinstance(listing.get("id"), str):
            price = price_from_listing(listing)
            if price is not None:
                prices[listing["id"]] = price
    return prices


def prompt_token_bound(body_bytes: int, messages: int) -> int:
    """An upper bound on the prompt's tokens: a BPE token covers at least one byte of text, and
    the request body holds every byte of the messages (and tools), plus the chat template's own."""
    return body_bytes + PER_MESSAGE_TOKENS * messages + PER_CALL_TOKENS
