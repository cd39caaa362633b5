"""Is this hotkey fit to validate? Checked before a round spends any compute.

Weights from a hotkey that is unregistered, has no validator permit, holds less than the chain's
minimum stake, or sends a `version_key` older than the subnet's `WeightsVersionKey` are refused
by the chain — on commit-reveal subnets only at reveal time, silently. So the validator reads its
standing first and refuses to start a round with one line naming everything that is missing.
"""

from __future__ import annotations

from subnet.chain.base import Chain, NotReady, Standing


def standing_problems(standing: Standing, version_key: int) -> list[str]:
    """Everything that would make the chain refuse this validator's weights (pure)."""
    if standing.uid is None:
        return ["the hotkey is not registered (btcli subnets register)"]
    problems = []
    if not standing.validator_permit:
        problems.append(f"uid {standing.uid} has no validator permit")
    if standing.stake < standing.min_stake:
        problems.append(f"stake {standing.stake:g} is below the minimum {standing.min_stake:g} to set weights")
    if version_key < standing.weights_version_key:
        problems.append(
            f"version_key {version_key} is older than the subnet's WeightsVersionKey "
            f"{standing.weights_version_key} (upgrade this package)"
        )
    return problems


def check_ready(chain: Chain, netuid: int, version_key: int) -> Standing:
    """The hotkey's standing, or `NotReady` with one line naming what is missing."""
    standing = chain.standing(netuid)
    problems = standing_problems(standing, version_key)
    if problems:
        raise NotReady(
            f"not validating on netuid {netuid} ({chain.network}) as {chain.hotkey}: " + "; ".join(problems)
        )
    return standing
