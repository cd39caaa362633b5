"""The validator's side of an LLM challenge: one gateway for the service, one grant per miner per round.

The gateway (`subnet.gateway.Gateway`) holds the upstream key; an Actor gets only its round's
token and the URL it can reach the gateway at (`actor_base_url`): loopback in process mode, the
Actor network's relay in Docker mode (`DockerRuntime.gateway_url`), the operator's public URL on
Basilica. The round engine runs an LLM challenge's tasks one at a time per miner, so every call the
gateway meters between `begin` and `end` belongs to that one task; the dollars `end` returns are
the gateway's meter, never anything the Actor says.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Mapping

from subnet.util.text import one_line

log = logging.getLogger(__name__)

BASE_URL_VAR = "OPENAI_BASE_URL"
API_KEY_VAR = "OPENAI_API_KEY"
NO_PUBLIC_URL = ("an LLM challenge on rented boxes (Basilica, Vast.ai, cloud) needs SUBNET_GATEWAY_PUBLIC_URL "
                 "(a public HTTPS URL that fronts this validator's gateway; docs/operator.md)")
# Runtimes whose Actors run on another machine: they reach the gateway only through its public URL.
REMOTE_RUNTIMES = frozenset({"basilica", "vast", "cloud"})


def runs_remote(runtime: Any) -> bool:
    return getattr(runtime, "name", "") in REMOTE_RUNTIMES


class LlmUnavailable(Exception):
    """An LLM round cannot run this way; the message says why and what to set, in one line."""


def needs_llm(challenge: Any) -> bool:
    return getattr(challenge, "llm_task_budget_usd", None) is not None


def actor_base_url(runtime: Any, gateway: Any, public_url: str | None) -> str:
    """The OPENAI_BASE_URL an Actor of `runtime` reaches the gateway at."""
    if runs_remote(runtime):
        if not public_url:
            raise LlmUnavailable(NO_PUBLIC_URL)
        return public_url.rstrip("/") + "/v1"
    relay = getattr(runtime, "gateway_url", None)
    return relay(gateway.bound_host, gateway.bound_port) if relay is not None else gateway.local_url


class LlmRound:
    """One round's LLM credentials and per-task metering (the bridge between engine and gateway)."""

    def __init__(self, gateway: Any, round_id: int, base_url: str, model: str | None = None) -> None:
        self.gateway = gateway
        self.round_id = round_id
        self.base_url = base_url
        self.model = model  # the model the Actor is told to use (the allowlist's first public name)

    def environment(self, uid: int, hotkey: str) -> Mapping[str, str]:
        """Exactly the two variables the Actor of `uid` receives this round."""
        grant = self.gateway.grant(self.round_id, uid, hotkey)
        return {BASE_URL_VAR: self.base_url, API_KEY_VAR: grant.token}

    def begin(self, uid: int, task_index: int) -> None:
        self.gateway.begin_task(self.round_id, uid, task_index)

    async def end(self, uid: int, task_index: int) -> float:
        """The task's metered dollars; settling may wait a few seconds for in-flight calls, so
        it runs off the event loop."""
        return float(await asyncio.to_thread(self.gateway.end_task, self.round_id, uid, task_index))

    async def close(self) -> dict[int, float]:
        """Every token of the round refused from now; the round's dollars per uid (in-flight calls
        may be waited for a few seconds: off the event loop)."""
        return await asyncio.to_thread(self.gateway.close_round, self.round_id)


class LlmService:
    """The gateway a validator (or a dry run) owns: started with the service, stopped with it."""

    def __init__(self, gateway: Any, public_url: str | None = None, model: str | None = None) -> None:
        self.gateway = gateway
        self.public_url = public_url
        self.model = model
        self.started = False

    async def start(self) -> None:
        """Raises LlmUnavailable (one line) when the gateway cannot serve (no prices, a busy port)."""
        if not self.started:
            try:
                await self.gateway.start()
            except Exception as exc:  # noqa: BLE001 - the upstream's or the host's trouble: one line
                raise LlmUnavailable(f"LLM gateway: {one_line(str(exc))}") from None
            self.started = True
            log.info("LLM gateway serving at %s", self.gateway.local_url)

    async def stop(self) -> None:
        if self.started:
            self.started = False
            await self.gateway.stop()

    def round(self, runtime: Any, round_id: int) -> LlmRound:
        return LlmRound(self.gateway, round_id, actor_base_url(runtime, self.gateway, self.public_url), self.model)


def make_gateway(usage_db: Path, bind_host: str | None = None, registry: Any = None,
                 task_budget_usd: float | None = None, **overrides: Any) -> LlmService:
    """The gateway from SUBNET_LLM_* / SUBNET_GATEWAY_* settings with `overrides` (field=value) on top.

    `bind_host`: where the gateway must listen for the runtime's Actors to reach it (Docker: the
    relay bridge's host address); None keeps SUBNET_GATEWAY_HOST. `task_budget_usd`: the challenge's
    suggested per-task budget, used unless SUBNET_LLM_TASK_BUDGET_USD sets one."""
    from subnet.gateway import Gateway, GatewaySettings

    if bind_host is not None:
        overrides["gateway_host"] = bind_host
    settings = GatewaySettings(**overrides)
    if task_budget_usd is not None and "llm_task_budget_usd" not in settings.model_fields_set:
        settings = settings.model_copy(update={"llm_task_budget_usd": task_budget_usd})
    gateway = Gateway(settings, usage_db=usage_db, **({"registry": registry} if registry is not None else {}))
    return LlmService(gateway, settings.gateway_public_url, next(iter(settings.model_map())))


def llm_for(challenge: Any, runtime: Any, usage_db: Path, registry: Any = None) -> LlmService | None:
    """The gateway a validator running `challenge` on `runtime` owns (None: no LLM needed).
    Raises LlmUnavailable (one line) for settings it cannot run with."""
    if not needs_llm(challenge):
        return None
    bind = getattr(runtime, "gateway_bind_host", None)  # Docker: the relay bridge's host address
    try:
        service = make_gateway(usage_db, bind() if bind else None, registry, challenge.llm_task_budget_usd)
    except Exception as exc:  # noqa: BLE001 - settings, a bridge that cannot be made: one line
        raise LlmUnavailable(f"LLM gateway: {type(exc).__name__}: {one_line(str(exc))}") from None
    if runs_remote(runtime) and not service.public_url:
        raise LlmUnavailable(NO_PUBLIC_URL)
    return service
