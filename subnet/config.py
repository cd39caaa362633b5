"""Validator and miner settings, read from `SUBNET_*` environment variables or a `.env` file.

Basilica's own variables (`BASILICA_*`) live in `subnet.compute.settings` under the names the SDK
and the operator guide use.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    return Path.home() / ".subnet"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUBNET_", env_file=".env", extra="ignore")

    home: Path = Field(default_factory=default_home, description="State directory (store, devchain, logs)")
    netuid: int = 1
    network: str = "devchain"

    # challenge
    tasks: int = Field(8, ge=1, description="Tasks per miner per round")
    n: int = Field(256, ge=8, le=8192, description="Matrix size")
    depth: int = Field(4, ge=1, le=64, description="Layers in the chain")

    # round engine
    concurrency: int = Field(8, ge=1, description="Calls in flight across all miners")
    per_miner: int = Field(4, ge=1, description="Calls in flight per miner")
    start_concurrency: int = Field(8, ge=1, description="Actors starting at once")
    call_timeout: float = Field(30.0, gt=0, description="Validator-side deadline per call, seconds")
    start_timeout: float = Field(60.0, gt=0, description="Deadline for an Actor to become healthy")
    max_response_bytes: int = Field(1 << 20, ge=1024, description="Largest answer accepted")
    breaker_faults: int = Field(2, ge=1, description="Consecutive timeouts/crashes before a miner's remaining tasks are failed")
    forward_env: list[str] = Field(default_factory=list, description="Env var names forwarded to miner Actors (allowlist)")

    # surviving the host (signals, state file, image pulls)
    stop_grace: float = Field(30.0, gt=0, description="Seconds SIGTERM/SIGINT waits for the round's teardown before removing by label")
    state_busy_timeout: float = Field(30.0, gt=0, description="Seconds one state-file write waits on another process's lock (then retried with backoff)")
    pull_stall_timeout: float = Field(60.0, gt=0, description="An image pull that gains less than 256 KiB in this many seconds is abandoned")
    pull_timeout: float = Field(900.0, gt=0, description="Longest one image pull may take, however it progresses")

    # scoring
    accuracy_floor: float = Field(0.8, ge=0, le=1)
    ema_alpha: float = Field(0.3, gt=0, le=1)
    power: float = Field(1.0, gt=0)
    burn_share: float = Field(0.0, ge=0, le=1)
    burn_uid: int = 0
    version_key: int = 1

    def forwarded_environment(self) -> dict[str, str]:
        """The values of the allowlisted variables, the only part of the validator's environment
        any miner Actor sees (empty by default)."""
        return {name: os.environ[name] for name in self.forward_env if name in os.environ}

    @property
    def store_path(self) -> Path:
        return self.home / "state.sqlite"

    @property
    def ledger_path(self) -> Path:
        """The spend ledger: one per state directory (money is not per subnet), never moved."""
        return self.home / "state.sqlite"

    @property
    def identity(self) -> str:
        """This validator's id (see `subnet.identity`): owner tag on containers and deployments."""
        from subnet.identity import validator_identity

        return validator_identity(self.home)

    @property
    def devchain_path(self) -> Path:
        return self.home / "devchain.sqlite"
