"""The `Chain` port: what the miner and validator need from a chain, as one signing identity.

An adapter is bound to one hotkey (a wallet for bittensor, a name for the devchain). Reads cover
the whole subnet; writes are signed by that hotkey. Adapters raise the errors below so callers
never depend on an SDK's exception types.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Protocol, Sequence


class ChainError(Exception):
    """A chain operation failed for a reason the caller should report."""


class ChainUnavailable(ChainError):
    """The chain endpoint cannot be reached (retry later; never a miner's fault)."""


class NotRegistered(ChainError):
    """The signing hotkey is not registered on the subnet."""


class NotReady(ChainError):
    """This hotkey cannot validate on the subnet yet; the message names everything missing."""


class WeightsRateLimited(ChainError):
    """Weights were set too recently; `retry_in_blocks` says how long to wait."""

    def __init__(self, message: str, retry_in_blocks: int = 0) -> None:
        super().__init__(message)
        self.retry_in_blocks = retry_in_blocks


@dataclass(frozen=True)
class Neuron:
    uid: int
    hotkey: str
    validator_permit: bool = False
    last_update: int = 0


@dataclass(frozen=True)
class Standing:
    """What the chain says about this hotkey as a validator on one subnet (read before a round)."""

    uid: int | None  # None: not registered
    validator_permit: bool
    stake: float  # the hotkey's stake on the subnet, in whole tokens
    min_stake: float  # the chain's minimum stake to set weights, in whole tokens
    weights_version_key: int  # the subnet's required minimum version_key
    commit_reveal: bool


@dataclass(frozen=True)
class WeightsReceipt:
    """What `set_weights` achieved: "set" (in force now) or "committed" (revealed later)."""

    status: str
    block: int
    reveal_round: int | None = None


@dataclass(frozen=True)
class RawCommitment:
    """A commitment exactly as the chain holds it: untrusted bytes from a stranger."""

    hotkey: str
    uid: int | None
    block: int
    data: bytes


class Chain(Protocol):
    network: str

    @property
    def hotkey(self) -> str: ...

    def current_block(self) -> int: ...

    def network_id(self) -> str:
        """A stable identity of the chain itself (genesis hash; the devchain's file)."""
        ...

    def standing(self, netuid: int) -> Standing: ...

    def weights_row(self, netuid: int) -> dict[int, float] | None:
        """The weights this hotkey has in force on chain (revealed ones only), as fractions."""
        ...

    def neurons(self, netuid: int) -> Sequence[Neuron]: ...

    def subnet_owner(self, netuid: int) -> str | None:
        """The subnet owner's hotkey (`SubtensorModule.SubnetOwnerHotkey`): the burn target."""
        ...

    def commitments(self, netuid: int) -> Sequence[RawCommitment]: ...

    def commit(self, netuid: int, data: bytes) -> int:
        """Write `data` as this hotkey's commitment; returns the block it landed in."""
        ...

    def set_weights(self, netuid: int, weights: Mapping[int, float], version_key: int) -> WeightsReceipt:
        """Set normalised weights by uid; raises WeightsRateLimited or NotRegistered."""
        ...
