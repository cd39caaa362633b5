"""Validator and miner settings, read from `SUBNET_*` environment variables or a `.env` file.

Basilica's own variables (`BASILICA_*`) live in `subnet.compute.settings` under the names the SDK
and the operator guide use.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


NETUID_MAX = 65535  # a subnet uid is a u16 on chain


def default_home() -> Path:
    return Path.home() / ".subnet"


def package_version_key(version: str | None = None) -> int:
    """`version_key` for weights, from the package version: MAJOR·1_000_000 + MINOR·1_000 + PATCH.

    A subnet owner raises `WeightsVersionKey` to this number to refuse older validators."""
    if version is None:
        from importlib.metadata import PackageNotFoundError, version as installed

        try:
            version = installed("subnet")
        except PackageNotFoundError:
            version = "0.0.0"
    # Leading digits of each part: "2.0.0rc1" is 2.0.0 (a pre-release never outranks its release).
    parts = [int(re.match(r"\d*", part).group() or 0) for part in version.split(".")[:3]]
    major, minor, patch = (parts + [0, 0, 0])[:3]
    return major * 1_000_000 + minor * 1_000 + patch


# The validator's credentials, and the two variables its LLM gateway alone gives an Actor.
NEVER_FORWARDED = frozenset({"SUBNET_LLM_API_KEY", "CHUTES_API_KEY", "BASILICA_API_TOKEN", "BASILICA_API_KEY",
                             "VAST_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUBNET_", env_file=".env", extra="ignore")

    home: Path = Field(default_factory=default_home, description="State directory (store, devchain, logs)")
    netuid: int = Field(1, ge=0, le=NETUID_MAX, description="Subnet uid (a u16 on chain)")
    network: str = "devchain"

    # challenge (matrix-chain/2; sizes: docs/challenge.md "Sizes")
    challenge: str = Field("matrix-chain/2", description="Challenge this validator runs: matrix-chain/2, or "
                           "prose-ledger/1 (needs an LLM: SUBNET_LLM_*, docs/validator.md)")
    tasks: int = Field(8, ge=1, description="Tasks per miner per round")
    n: int = Field(12800, ge=8, le=16384, description="Matrix size a validator runs (production)")
    depth: int = Field(2, ge=1, le=64, description="Layers in the chain a validator runs (production)")
    dry_run_n: int = Field(256, ge=8, le=16384, description="Matrix size of `subnet dry-run` (quick on a laptop)")
    dry_run_depth: int = Field(4, ge=1, le=64, description="Layers of `subnet dry-run`")

    # round engine
    concurrency: int = Field(8, ge=1, description="Calls in flight across all miners")
    per_miner: int = Field(4, ge=1, description="Calls in flight per miner")
    start_concurrency: int = Field(8, ge=1, description="Actors starting at once")
    call_timeout: float = Field(30.0, gt=0, description="Validator-side deadline per call, seconds")
    start_timeout: float = Field(60.0, gt=0, description="Deadline for an Actor to become healthy")
    max_response_bytes: int = Field(1 << 20, ge=1024, description="Largest answer accepted")
    breaker_faults: int = Field(2, ge=1, description="Consecutive timeouts/crashes before a miner's remaining tasks are failed")
    forward_env: list[str] = Field(default_factory=list, description="Env var names forwarded to miner Actors (allowlist)")
    local_gpu_price: float | None = Field(None, gt=0, description="$/h of one local GPU in Docker mode (default: the GPU policy's typical price)")

    # Basilica: from create to a healthy Actor; sized in subnet/compute/start_budget.py (a failing pull
    # gets 300 s, then scheduling and the route). Past it, a deployment whose Actor never ran for
    # `start_timeout` is Basilica's fault (infra), never the miner's.
    basilica_start_timeout: float = Field(600.0, gt=0, description="Deadline for a Basilica deployment to serve, seconds")
    # Basilica budget guard: a round that would break one is skipped whole (docs/operator.md)
    max_deployments: int | None = Field(None, ge=1, description="Deployments alive at once (a round starts one per image)")
    max_round_spend: float | None = Field(None, gt=0, description="Dollars per round, at the recorded price, upper bound")
    min_balance: float | None = Field(None, ge=0, description="Skip a round that could take the Basilica balance below this")

    # surviving the host (signals, state file, image pulls)
    stop_grace: float = Field(30.0, gt=0, description="Seconds SIGTERM/SIGINT waits for the round's teardown before removing by label")
    state_busy_timeout: float = Field(30.0, gt=0, description="Seconds one state-file write waits on another process's lock (then retried with backoff)")
    pull_stall_timeout: float = Field(60.0, gt=0, description="An image pull that gains less than 256 KiB in this many seconds is abandoned")
    pull_timeout: float = Field(300.0, gt=0, description="Longest one image pull may take, however it progresses")
    pull_wait: float = Field(120.0, gt=0, description="Longest a round waits for image pulls before the Actors that are ready start their tasks")

    # reading miners' registries before a round (manifest, config, owner label)
    registry_timeout: float = Field(15.0, gt=0, description="Deadline for one registry request: connect, headers, body, redirects")
    admission_timeout: float = Field(45.0, gt=0, description="Deadline for reading one image (every request it takes)")
    admission_round_timeout: float = Field(120.0, gt=0, description="Deadline for the round's whole registry check")
    admission_concurrency: int = Field(16, ge=1, description="Images read from registries at once")
    admission_fault_memory: float = Field(24 * 3600.0, ge=0, description="Seconds a fault proven by an image's own content is remembered")

    # scoring
    accuracy_floor: float = Field(0.8, ge=0, le=1)
    ema_alpha: float = Field(0.3, gt=0, le=1)
    power: float = Field(1.0, gt=0)
    burn_share: float = Field(0.0, ge=0, le=1)
    burn_uid: int | None = Field(None, ge=0, description="Uid that burned weight goes to (default: the subnet owner's uid, read from the chain)")
    version_key: int = Field(default_factory=package_version_key, description="Weights version key (default: from the package version)")

    # the validator as a service
    reeval_interval: float = Field(24 * 3600.0, ge=0, description="Seconds before an unchanged image is evaluated again")
    reeval_slice: int = Field(8, ge=1, description="Most unchanged images re-evaluated per round (oldest first)")
    allowed_registries: list[str] = Field(default_factory=list, description="Registries allowed even if private/loopback (host[:port])")
    metrics_port: int = Field(0, ge=0, le=65535, description="Port for /health, /metrics, /leaderboard (0: off)")
    metrics_host: str = Field("127.0.0.1", description="Address the metrics endpoint binds")
    log_json: bool = Field(False, description="Logs as one JSON object per line")

    @field_validator("forward_env")
    @classmethod
    def _no_secret_forwarded(cls, names: list[str]) -> list[str]:
        """The validator's own credentials never go to a miner's Actor, whatever the allowlist says."""
        secret = sorted(set(names) & NEVER_FORWARDED)
        if secret:
            raise ValueError(f"SUBNET_FORWARD_ENV may not forward {', '.join(secret)}: validator credentials never "
                             "reach a miner's Actor (an LLM env gets a round token from the gateway instead)")
        return names

    def forwarded_environment(self) -> dict[str, str]:
        """The values of the allowlisted variables, the only part of the validator's environment
        any miner Actor sees (empty by default)."""
        return {name: os.environ[name] for name in self.forward_env if name in os.environ}

    @property
    def store_path(self) -> Path:
        """The state file of versions before per-subnet state (now the ledger's file); a
        validator's subnet state lives in `subnet.state.files.subnet_state_path`."""
        return self.home / "state.sqlite"

    @property
    def ledger_path(self) -> Path:
        """The spend ledger: one per state directory (money is not per subnet), never moved."""
        return self.home / "state.sqlite"


    @property
    def devchain_path(self) -> Path:
        return self.home / "devchain.sqlite"


def settings_problem(exc) -> str:
    """A pydantic ValidationError of `Settings` as one line naming each variable and what is wrong."""
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error.get("loc") else ""
        name = f"SUBNET_{field.upper()}" if field else "settings"
        shown = repr(error.get("input"))
        parts.append(f"{name}={shown if len(shown) <= 40 else shown[:39] + '…'}: {error['msg']}")
    return "invalid settings: " + "; ".join(parts)
