"""Basilica settings, read from `BASILICA_*` environment variables or a `.env` file.

Token precedence (first wins): the `--api-key` option, `BASILICA_API_TOKEN`, `BASILICA_API_KEY`
(legacy alias), then the same two names in `.env`. Environment beats `.env` because pydantic-settings
consults the environment source before the dotenv source, and within a source `AliasChoices` takes
the first name present. Empty variables are ignored, so `BASILICA_API_TOKEN=` does not hide a key.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from subnet.compute.policy import (
    DEFAULT_ALLOWED_GPU_TYPES,
    DEFAULT_MAX_HOURLY_RATE,
    GpuPolicy,
    PolicyFormatError,
    parse_allowlist,
    parse_max_rate,
)

DEFAULT_API_URL = "https://api.basilica.ai"
DEFAULT_CPU_HOURLY_RATE = Decimal("0.10")  # an assumption (see cpu_hourly_rate)
# One cap and one allowlist for every provider, first name first (subnet/compute/providers.py too).
CAP_NAMES = ("SUBNET_MAX_HOURLY_RATE", "BASILICA_MAX_HOURLY_RATE")
ALLOWLIST_NAMES = ("SUBNET_ALLOWED_GPU_TYPES", "BASILICA_ALLOWED_GPU_TYPES")


class ConfigError(ValueError):
    """A missing or malformed setting; the message is one line and names the variable."""


class BasilicaSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BASILICA_", env_file=".env", extra="ignore", env_ignore_empty=True, populate_by_name=True
    )

    api_token: SecretStr | None = Field(
        None, validation_alias=AliasChoices("BASILICA_API_TOKEN", "BASILICA_API_KEY", "api_token")
    )
    api_url: str = DEFAULT_API_URL
    # Kept as strings here and parsed by the pure policy module, which owns the format and its errors.
    # One cap and one allowlist for every provider: the SUBNET_ names win, the BASILICA_ ones still work
    # (subnet/compute/providers.py reads the same names in the same order for Vast).
    max_hourly_rate: str = Field(str(DEFAULT_MAX_HOURLY_RATE), validation_alias=AliasChoices(
        "SUBNET_MAX_HOURLY_RATE", "BASILICA_MAX_HOURLY_RATE", "max_hourly_rate"))
    allowed_gpu_types: str = Field(DEFAULT_ALLOWED_GPU_TYPES, validation_alias=AliasChoices(
        "SUBNET_ALLOWED_GPU_TYPES", "BASILICA_ALLOWED_GPU_TYPES", "allowed_gpu_types"))
    # A CPU-only deployment (a challenge that needs no GPU) has no offering to read a price from, and
    # deployments carry none (SRV types.rs): this is an ASSUMED rate for 2 vCPU / 8 GiB, recorded as an
    # estimate. $0.10/h is above what clouds ask for such a box, so the budget guard errs high.
    cpu_hourly_rate: Decimal = Field(DEFAULT_CPU_HOURLY_RATE, gt=0, description="Estimated $/h of a CPU-only deployment")
    retries: int = Field(4, ge=1, le=10, description="Attempts per call for 429/5xx/network errors")
    backoff: float = Field(0.5, ge=0, le=30, description="First retry delay in seconds; doubles per attempt")
    timeout: float = Field(60.0, gt=0, description="Deadline per API call in seconds")
    # burst + per minute = 60: under the public server's 60 a minute per client however it counts
    requests_per_minute: float = Field(50.0, ge=0, description="Our own pace of API calls (0: unpaced)")
    request_burst: int = Field(10, ge=1, description="API calls allowed at once before pacing applies")
    ssh_public_key: Path = Field(
        default_factory=lambda: Path.home() / ".ssh" / "id_ed25519.pub",
        description="Public key registered with Basilica when the account has none",
    )

    def token(self) -> str:
        """The API token, or a ConfigError naming the variable. Never log the return value."""
        value = self.api_token.get_secret_value().strip() if self.api_token else ""
        if not value:
            raise ConfigError("no Basilica API token: set BASILICA_API_TOKEN (or pass --api-key)")
        return value

    def policy(self) -> GpuPolicy:
        try:
            return GpuPolicy(parse_allowlist(self.allowed_gpu_types, variable_holding(ALLOWLIST_NAMES)),
                             parse_max_rate(self.max_hourly_rate, variable_holding(CAP_NAMES)))
        except PolicyFormatError as exc:
            raise ConfigError(str(exc)) from None

    @property
    def cap(self) -> Decimal:
        return self.policy().max_hourly_rate


def load_settings(api_key: str | None = None, api_url: str | None = None, **overrides) -> BasilicaSettings:
    """Settings with CLI overrides applied; pydantic errors become one-line ConfigErrors."""
    if api_key:
        overrides["api_token"] = SecretStr(api_key)
    if api_url:
        overrides["api_url"] = api_url
    try:
        settings = BasilicaSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc)) from None
    settings.policy()  # fail early on a malformed allowlist or cap
    return settings


def variable_holding(names: tuple[str, ...], env_file: str = ".env") -> str:
    """Which of `names` holds the value pydantic-settings read (environment first, then `.env`, first
    name first, empty ignored, as the settings classes read them), so an error names the variable the
    operator actually set; the first name when none is set (the default applies)."""
    return set_variable(names, env_file) or names[0]


def set_variable(names: tuple[str, ...], env_file: str = ".env") -> str | None:
    """The first of `names` set in the environment, else in `env_file`; None when neither has one."""
    import os

    from dotenv import dotenv_values

    dotenv = dotenv_values(env_file) if Path(env_file).is_file() else {}
    for source in (os.environ, dotenv):
        for name in names:
            if (source.get(name) or "").strip():
                return name
    return None


def _one_line(exc: ValidationError) -> str:
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err.get("loc") else "setting"
    name = field.upper() if field.upper().startswith("BASILICA_") else f"BASILICA_{field.upper()}"
    shown = "" if "TOKEN" in name else f" (got {err.get('input')!r})"  # never echo a secret
    return f"{name}: {err.get('msg', 'invalid value')}{shown}"
