"""How long a Basilica deployment may take to start, when its miner's own clock starts, and how
long it may live. Pure: numbers and small decisions, no I/O.

Sized from the last public Basilica server, bigailabs/cathedral at cb85814f (line numbers there;
a611843f moves them by ~34), and basilica-sdk 0.36.8:
- An image pull that keeps failing fails the deployment after 300 s (`crates/basilica-operator/src/
  controllers/user_deployment_controller.rs` 1203, `IMAGE_PULL_FAILURE_TIMEOUT_SECS`); a pull that
  makes progress has no limit at all, and shows phase "starting", not "pulling" (the kubelet's
  waiting reason during a pull is ContainerCreating, which `is_pulling_image`, 1300-1327, does not
  match).
- Scheduling has no timeout either; a box the pool lacks is provisioned by the autoscaler, whose
  phases are bounded at 10 min each and more (`crates/basilica-autoscaler/src/config.rs` 218-226).
- After "ready" the route and DNS still have to answer: the SDK's `Deployment.wait_until_ready`
  polls status, then DNS, then HTTP (`basilica/_deployment.py` 452-540) within one timeout, 300 s
  by default; its helpers for GPU images (`deploy_vllm`, `deploy_sglang`) wait 600 s.
- A GPU container gets a TCP startup probe of 10 s × 60 = 600 s before Kubernetes restarts it
  (controller 312-394, `build_health_probes`): the platform itself gives a GPU Actor ten minutes.
So the default budget is 300 s of pull + 180 s of scheduling on a warm pool + 120 s of route and
DNS = 600 s from create to healthy. What is still not serving then, without its Actor having run
for its own boot allowance, is Basilica's doing (infrastructure), never the miner's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

PULL_S = 300.0  # the operator's limit on a failing pull (see above); a slow healthy pull has none
SCHEDULE_S = 180.0  # node assignment on a warm pool; a fresh node takes longer and is then infra
ROUTE_S = 120.0  # gateway route and DNS after Kubernetes says ready (the SDK waits for both)
DEFAULT_START_BUDGET_S = PULL_S + SCHEDULE_S + ROUTE_S
TTL_MARGIN_S = 600.0  # beyond the longest a deployment can live, before a TTL (if enforced) ends it
# Phases in which the Actor's container is running (operator `DeploymentPhase`, crd/user_deployment.rs
# 258-276): health_check = running, not yet Ready; degraded = some pods ready, some failed.
RUNNING_PHASES = {"health_check", "ready", "degraded"}


@dataclass(frozen=True)
class StartBudget:
    """`total_s`: from create until the Actor must answer /health; `boot_s`: the miner's own
    allowance, from its container running until /health answers (the Docker runtime's start
    deadline: the same contract for the same image everywhere); `route_s`: what Basilica may add
    once Kubernetes says ready (its TCP probe passes) before the route answers through the URL."""

    total_s: float = DEFAULT_START_BUDGET_S
    boot_s: float = 60.0
    route_s: float = ROUTE_S
    # how long a failed-looking deployment is watched before "no crash seen" counts as proof: the
    # kubelet restarts a crashed container (and reports BackOff) within seconds, a killed pod stays down
    settle_s: float = 30.0

    def allowance(self, phase: str | None) -> float:
        """How long a running Actor may go unhealthy before that is its own fault: its boot time,
        plus the route's time once Kubernetes already reports it ready."""
        return self.boot_s + (self.route_s if (phase or "").lower() == "ready" else 0.0)

    @property
    def longest_s(self) -> float:
        """The longest a start can take: an Actor first seen running at the end of the budget
        still gets its whole allowance."""
        return self.total_s + self.boot_s + self.route_s

    def scaled(self, factor: float) -> StartBudget:
        """The same budget on a clock `factor` times faster (time-scaled tests and benchmarks)."""
        return StartBudget(self.total_s / factor, self.boot_s / factor, self.route_s / factor, self.settle_s / factor)


def calls_bound_s(miners: int, tasks: int, per_miner: int, concurrency: int, call_timeout: float) -> float:
    """The longest a ready deployment can spend on its calls: every task at its deadline, `per_miner`
    at a time, and never more than `concurrency` calls of the whole round at once (the round
    engine's bounds: with fair turns every miner may finish near the end)."""
    rounds = max(math.ceil(tasks / max(per_miner, 1)), math.ceil(miners * tasks / max(concurrency, 1)))
    return rounds * call_timeout


def round_calls_s(settings: Any, miners: int) -> float:
    """`calls_bound_s` for a round of `miners` under the validator's settings (tasks, per_miner,
    concurrency, call_timeout)."""
    s = settings
    return calls_bound_s(miners, s.tasks, s.per_miner, s.concurrency, s.call_timeout)


def life_bound_s(start_s: float, calls_s: float) -> float:
    """The longest one deployment can live in a round: its longest start, then its calls."""
    return start_s + calls_s


def ttl_s(start_s: float, round_s: float, margin_s: float = TTL_MARGIN_S) -> int:
    """`ttlSeconds` for a deployment: start budget + the round's calls + a margin. A backstop only:
    the public server stores it and never acts on it (`k8s/client.rs` 848 copies it into the CR;
    the operator never reads it), so deletion and reclaim are what stop the bill."""
    return int(math.ceil(start_s + round_s + margin_s))


class StartClock:
    """When a deployment's miner clock started: the first time Basilica showed its container running.

    Until then every second is Basilica's (scheduling, pulling, creating the container)."""

    def __init__(self, budget: StartBudget, created_at: float) -> None:
        self.budget = budget
        self.created_at = created_at
        self.running_since: float | None = None

    def observe(self, phase: str | None, container_states: list[str], now: float) -> None:
        running = (phase or "").lower() in RUNNING_PHASES or any(s.lower() == "running" for s in container_states)
        if running and self.running_since is None:
            self.running_since = now

    def running_for(self, now: float) -> float | None:
        return None if self.running_since is None else now - self.running_since

    def deadline(self, phase: str | None = None) -> float:
        """When the start budget runs out, or later: an Actor that started running near the end
        still gets its whole allowance."""
        end = self.created_at + self.budget.total_s
        if self.running_since is not None:
            end = max(end, self.running_since + self.budget.allowance(phase))
        return end
