"""Whether a call fits its budgets, and how many completion tokens it may have (pure).

A call reserves its worst case before it is forwarded: the prompt's token bound at the prompt price
plus `max_tokens` at the completion price. `max_tokens` is the smallest of what the client asked,
the operator's clamp and what the remaining budget (task and round, after every other in-flight
reservation) affords; a call that cannot afford one completion token is refused.
"""

from __future__ import annotations

from dataclasses import dataclass

from subnet.gateway.pricing import Price


@dataclass(frozen=True)
class Plan:
    max_tokens: int
    reserved_usd: float


@dataclass(frozen=True)
class Refusal:
    reason: str  # a label of subnet_llm_refusals_total
    message: str


def plan_call(*, requested: int | None, clamp: int, prompt_tokens: int, price: Price,
              task_left_usd: float, round_left_usd: float) -> Plan | Refusal:
    left = min(task_left_usd, round_left_usd)
    which = "task" if task_left_usd <= round_left_usd else "round"
    prompt_usd = price.usd(prompt_tokens, 0)
    if price.completion_per_m > 0:
        affordable = int((left - prompt_usd) * 1e6 / price.completion_per_m)
    else:
        affordable = clamp if left >= prompt_usd else 0
    max_tokens = min(requested if requested is not None else clamp, clamp, affordable)
    if max_tokens < 1:
        return Refusal("budget", f"LLM budget exhausted: the {which} budget has ${max(left, 0):.6f} left, "
                                 f"not enough for this prompt and one completion token")
    return Plan(max_tokens, price.usd(prompt_tokens, max_tokens))
