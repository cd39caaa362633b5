"""The budget guard: a round that would break a spending limit is skipped whole, never half-run. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from subnet.compute.policy import money


@dataclass(frozen=True)
class Budget:
    max_deployments: int | None = None  # deployments alive at once (a round starts them all)
    max_round_spend: Decimal | None = None  # dollars per round, at the recorded price
    min_balance: Decimal | None = None  # never start a round that could take the balance below this


@dataclass(frozen=True)
class RoundCost:
    deployments: int
    hourly_price: Decimal  # per deployment (box price), as recorded
    hours: Decimal  # upper bound of one deployment's life this round

    @property
    def dollars(self) -> Decimal:
        return (self.hourly_price * self.hours * self.deployments).quantize(Decimal("0.0001"))


def expected_hours(life_s: float) -> Decimal:
    """`start_budget.life_bound_s` in hours: the longest one deployment can live in a round (its
    whole start budget, then every call at its deadline)."""
    return Decimal(str(life_s)) / 3600


def refusal(budget: Budget, cost: RoundCost, balance: Decimal | None) -> str | None:
    """One line saying which limit the round would break, or None."""
    if budget.max_deployments is not None and cost.deployments > budget.max_deployments:
        return (f"round skipped: it needs {cost.deployments} deployments and SUBNET_MAX_DEPLOYMENTS is "
                f"{budget.max_deployments}")
    if budget.max_round_spend is not None and cost.dollars > budget.max_round_spend:
        return (f"round skipped: it could cost up to {money(cost.dollars)} ({cost.deployments} × "
                f"{money(cost.hourly_price)}/h × {float(cost.hours) * 60:.1f} min) and SUBNET_MAX_ROUND_SPEND is "
                f"{money(budget.max_round_spend)}")
    if budget.min_balance is not None:
        if balance is None:
            return "round skipped: the Basilica balance could not be read and SUBNET_MIN_BALANCE is set"
        if balance - cost.dollars < budget.min_balance:
            return (f"round skipped: balance {money(balance)} minus up to {money(cost.dollars)} for this round "
                    f"would fall below SUBNET_MIN_BALANCE {money(budget.min_balance)}")
    return None
