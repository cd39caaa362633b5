"""The chain port and its adapters (embedded devchain, bittensor)."""

from subnet.chain.base import (
    Chain,
    ChainError,
    ChainUnavailable,
    Neuron,
    NotReady,
    NotRegistered,
    RawCommitment,
    Standing,
    WeightsRateLimited,
)

__all__ = [
    "Chain",
    "ChainError",
    "ChainUnavailable",
    "Neuron",
    "NotReady",
    "NotRegistered",
    "RawCommitment",
    "Standing",
    "WeightsRateLimited",
]
