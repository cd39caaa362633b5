"""From a round's scores to weights on chain: smoothing, the burn target, setting and confirming weights.

Pure arithmetic lives in `subnet.validator.scoring`; this is the part that reads the chain (neurons,
the subnet owner, the revealed row) and the state (smoothed scores, the weights last sent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

from subnet.chain.base import Chain, ChainError, Neuron, WeightsRateLimited, WeightsReceipt
from subnet.config import Settings
from subnet.state.store import Store
from subnet.util.text import one_line
from subnet.validator import scoring
from subnet.validator.results import ResultWriter
from subnet.validator.round import MinerOutcome

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BurnTarget:
    uid: int | None  # None: nowhere to burn (the owner's hotkey is not registered)
    who: str  # why this uid, for the report and `validator status`


@dataclass(frozen=True)
class Payout:
    weights: dict[int, float]
    burn: BurnTarget
    nobody_earned: bool


class Payouts:
    """The validator's weights side: one per validator, called off the event loop (chain and state I/O)."""

    def __init__(self, chain: Chain, settings: Settings, store: Store, results: ResultWriter) -> None:
        self.chain = chain
        self.settings = settings
        self.store = store
        self.results = results

    def smooth(
        self, outcomes: Sequence[MinerOutcome], raw: dict[int, float], neurons: Sequence[Neuron], round_id: int
    ) -> dict[str, float]:
        current = {o.submission.hotkey: raw[o.submission.uid] for o in outcomes if o.counted}
        evaluated = {o.submission.hotkey for o in outcomes}
        registered = {n.hotkey for n in neurons}
        # Registered miners with nothing valid committed this round decay toward zero.
        for neuron in neurons:
            if neuron.hotkey not in evaluated and neuron.hotkey != self.chain.hotkey:
                current.setdefault(neuron.hotkey, 0.0)
        # A hotkey no longer registered (replaced on its uid, deregistered) is forgotten: whoever
        # holds the uid now starts from nothing.
        previous = {hk: s for hk, s in self.results.smoothed_scores().items() if hk in registered}
        smoothed = scoring.smooth(previous, {hk: s for hk, s in current.items() if hk in registered},
                                  self.settings.ema_alpha)
        self.results.save_smoothed_scores(smoothed, round_id)
        return smoothed

    def weights(self, smoothed: dict[str, float], neurons: Sequence[Neuron]) -> Payout:
        registered = {n.hotkey: n.uid for n in neurons}
        by_uid = {uid: smoothed[hk] for hk, uid in registered.items() if hk in smoothed}
        s = self.settings
        burn = self.burn_target(neurons)
        if burn.uid is None and s.burn_share > 0:
            log.warning("no burn uid (%s): SUBNET_BURN_SHARE is not applied this round", burn.who)
        if not any(score > 0 for score in by_uid.values()):
            # Nobody earned: all weight to the burn uid, so this validator never goes stale on chain.
            return Payout({} if burn.uid is None else {burn.uid: 1.0}, burn, nobody_earned=True)
        share = s.burn_share if burn.uid is not None else 0.0
        weights = scoring.weights(by_uid, power=s.power, burn_share=share, burn_uid=burn.uid or 0)
        return Payout(weights, burn, nobody_earned=False)

    def burn_target(self, neurons: Sequence[Neuron]) -> BurnTarget:
        """Where burned weight goes: SUBNET_BURN_UID when set, else the subnet owner's uid as the
        chain records it (on the devchain the owner holds uid 0; on a real subnet it is wherever
        the owner's hotkey is registered, never an assumed 0)."""
        if self.settings.burn_uid is not None:
            return BurnTarget(self.settings.burn_uid, "SUBNET_BURN_UID")
        try:
            owner = self.chain.subnet_owner(self.settings.netuid)
        except ChainError as exc:
            return BurnTarget(None, f"the subnet owner could not be read: {one_line(str(exc))}")
        uid = next((n.uid for n in neurons if owner and n.hotkey == owner), None)
        if uid is None:
            who = f"the subnet owner's hotkey {owner} holds no uid" if owner else "the chain names no subnet owner"
            return BurnTarget(None, who)
        return BurnTarget(uid, f"the subnet owner {owner}")

    def set_weights(self, payout: Payout) -> tuple[str, WeightsReceipt | None]:
        weights = payout.weights
        if not weights:
            return (f"not set: nobody earned and there is no burn uid ({payout.burn.who}); "
                    f"set SUBNET_BURN_UID"), None
        try:
            receipt = self.chain.set_weights(self.settings.netuid, weights, self.settings.version_key)
        except WeightsRateLimited as exc:
            return f"not set: rate limited, retry in {exc.retry_in_blocks} blocks", None
        except ChainError as exc:
            log.warning("set_weights failed: %s", exc)
            return f"not set: {exc}", None
        burn = " (nobody earned: all to the burn uid)" if payout.nobody_earned else ""
        if receipt is not None and receipt.status == "committed":
            return f"committed for {len(weights)} uids at block {receipt.block}; reveal pending{burn}", receipt
        return f"set for {len(weights)} uids{burn}", receipt

    def confirm_reveal(self) -> str:
        """On commit-reveal subnets: did the last committed weights land when revealed?"""
        last = self.store.last_weights()
        if last is None or last.status != "committed" or last.confirmed_block is not None:
            return ""
        try:
            row = self.chain.weights_row(self.settings.netuid)
        except ChainError as exc:
            return f"reveal of round {last.round_id}: unknown ({exc})"
        if row is not None and weights_match(row, last.weights):
            block = self.chain.current_block()
            self.store.confirm_weights(last.round_id, block)
            return f"reveal of round {last.round_id} confirmed at block {block}"
        return f"reveal of round {last.round_id} pending"


def weights_match(on_chain: dict[int, float], sent: dict[int, float], tolerance: float = 0.01) -> bool:
    """Whether a revealed row is what was sent (u16 quantisation allowed for)."""
    if {u for u, w in on_chain.items() if w > 0} != {u for u, w in sent.items() if w > 0}:
        return False
    total = sum(sent.values()) or 1.0
    return all(abs(on_chain.get(u, 0.0) - w / total) <= tolerance for u, w in sent.items())
