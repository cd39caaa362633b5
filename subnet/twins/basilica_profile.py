"""What happens to a twin deployment over time: scheduling, a pull of minutes, and maybe an end
that is nobody's fault but the cluster's. Time-scaled, so tests run production timings fast.

A `Fate` is one deployment's timeline (seconds on the twin's clock); `ProductionProfile` draws them
as production would: pulls of 30-300 s (a 1 GB image over a shared link takes about a minute, the
6 GB torch env several), some boxes reclaimed or evicted under load. The kinds of disruption and
what each looks like through the API follow Kubernetes itself:
- "evicted": the kubelet evicts the pod under node pressure. The pod stays listed in phase Failed
  (reason Evicted, message "The node was low on resource: memory. ..." — kubelet
  `pkg/kubelet/eviction/helpers.go` `nodeLowMessageFmt`), an "Evicted" event is recorded on it,
  and its ReplicaSet makes a replacement pod that waits to be scheduled.
- "preempted": the scheduler deletes the pod for a higher-priority one (event "Preempted",
  "Preempted by <pod> on node <node>"; kube-scheduler defaultpreemption). The victim is gone, so
  its events are too (the API lists events of the pods that exist: cathedral cb85814f
  `crates/basilica-api/src/k8s/client.rs` `get_user_deployment_events`); only a replacement pod,
  unscheduled, remains.
- "spot_reclaim": the box goes away. With graceful node shutdown the kubelet stops the pod (phase
  Failed, reason "Terminated", "Pod was terminated in response to imminent node shutdown." —
  `pkg/kubelet/nodeshutdown`); its container ends in Error (SIGTERM), never restarted; a
  replacement waits for a node.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

KINDS = ("evicted", "preempted", "spot_reclaim")


@dataclass(frozen=True)
class Disruption:
    kind: str  # one of KINDS
    after_ready_s: float = 0.0  # seconds after the Actor started serving (0: right after ready)


@dataclass(frozen=True)
class Fate:
    schedule_s: float = 0.0  # until a node is assigned
    pull_s: float = 0.0  # then until the container starts (pull + create)
    disruption: Disruption | None = None


class ProductionProfile:
    """Fates drawn as production would deal them, on a clock `time_scale` times faster."""

    def __init__(self, *, pull_s: tuple[float, float] = (30.0, 300.0), schedule_s: tuple[float, float] = (2.0, 20.0),
                 disrupted: float = 0.05, kinds: tuple[str, ...] = ("spot_reclaim", "evicted", "preempted"),
                 disrupt_within_s: float = 60.0, time_scale: float = 1.0, seed: int = 7) -> None:
        self.pull_s, self.schedule_s = pull_s, schedule_s
        self.disrupted, self.kinds, self.disrupt_within_s = disrupted, kinds, disrupt_within_s
        self.time_scale = time_scale
        self._rng = random.Random(seed)

    def draw(self) -> Fate:
        rng, k = self._rng, self.time_scale
        disruption = None
        if rng.random() < self.disrupted:
            disruption = Disruption(rng.choice(self.kinds), rng.uniform(0.0, self.disrupt_within_s) / k)
        return Fate(rng.uniform(*self.schedule_s) / k, rng.uniform(*self.pull_s) / k, disruption)
