"""The Vast runtime's own settings (`VAST_*`); `subnet.runtime.factory.vast_runtime` builds the runtime.

The allowlist and the cap are the cross-provider policy (`subnet.compute.providers.load_policy`:
`SUBNET_MAX_HOURLY_RATE`, alias `BASILICA_MAX_HOURLY_RATE`); the key is resolved flag → env →
keyring → dotenv → vastai config (`subnet.compute.vast.resolve_vast_key`) and handed to the client
only: never to an instance, never to a log line.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class VastRuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VAST_", env_file=".env", extra="ignore", env_ignore_empty=True)

    start_timeout: float = Field(900.0, gt=0, description="Create → Actor /health, seconds (the host pulls the image)")
    poll: float = Field(5.0, gt=0, description="Seconds between listings of the account's instances")
    disk_gb: float = Field(16.0, gt=0, description="Disk per instance, GB (priced into dph_total)")
