"""Where each miner of a round runs: the best remaining box per evaluation, across providers. Pure.

A round ranks every allowed offer of every provider once (`selection.rank`, cheapest per evaluation
first, nothing above the cap). Each miner then takes the best choice still left:

- a Vast offer is one box: handed out once (a box cannot be rented twice);
- a Basilica offer is a GPU request, not a box (deployments take no offering id; the scheduler
  finds a node): it stays for every miner until Basilica refuses a start.

A start the provider refuses before anything ran (`protocol.StartRefused`: the box was rented by
someone else, the create was refused, no node with the GPU) costs that choice: a Vast offer is
already gone, a refused Basilica request is dropped for the rest of the round (every later create
would ask for the same GPU). The miner then takes the best choice of another provider (of the same
one when no other has a choice left), once.
"""

from __future__ import annotations

from collections import Counter
from typing import Collection, Sequence

from subnet.compute.selection import Ranked

ONE_BOX_PER_OFFER = frozenset({"vast"})  # providers whose offer is a single box


class RoundPlan:
    """This round's ranked choices and how many miners each provider placed."""

    def __init__(self, ranked: Sequence[Ranked], single_box: Collection[str] = ONE_BOX_PER_OFFER) -> None:
        self._left = list(ranked)
        self._single_box = frozenset(single_box)
        self.placed: Counter[str] = Counter()

    def take(self, not_on: Collection[str] = ()) -> Ranked | None:
        """The best choice left on a provider not in `not_on`; a one-box offer leaves the plan."""
        for i, choice in enumerate(self._left):
            if choice.offer.provider not in not_on:
                if choice.offer.provider in self._single_box:
                    del self._left[i]
                return choice
        return None

    def refused(self, choice: Ranked) -> None:
        """The provider refused to start on `choice`: it is not offered again this round."""
        self._left = [c for c in self._left if c.offer != choice.offer]

    def started(self, choice: Ranked) -> None:
        self.placed[choice.offer.provider] += 1

    def providers_left(self) -> set[str]:
        return {c.offer.provider for c in self._left}
