"""The gateway as the validator uses it: start/stop, grants, tasks, spend (see docs/gateway.md).

Every public method except `start`/`stop` is synchronous and safe from any thread but the
gateway's own; the serving happens on the gateway's thread (subnet/gateway/server.py).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from pathlib import Path

import httpx
from prometheus_client import REGISTRY, CollectorRegistry

from subnet.gateway.app import GatewayApp
from subnet.gateway.grants import Grants, LlmGrant
from subnet.gateway.metering import Metering
from subnet.gateway.metrics import GatewayMetrics
from subnet.gateway.pricing import Price, prices_from_listing
from subnet.gateway.relay import Upstream
from subnet.gateway.server import ThreadedServer
from subnet.gateway.settings import GatewaySettings
from subnet.gateway.usage import UsageStore

log = logging.getLogger(__name__)
_METRICS: "weakref.WeakKeyDictionary[CollectorRegistry, GatewayMetrics]" = weakref.WeakKeyDictionary()


class GatewayError(Exception):
    """The gateway cannot start; `str()` is one line saying what to do."""


def _metrics(registry: CollectorRegistry | None) -> GatewayMetrics:
    registry = REGISTRY if registry is None else registry
    if registry not in _METRICS:  # one set of collectors per registry, however many gateways
        _METRICS[registry] = GatewayMetrics(registry)
    return _METRICS[registry]


class Gateway:
    def __init__(self, settings: GatewaySettings | None = None, usage_db: Path | str = "llm_usage.sqlite",
                 registry: CollectorRegistry | None = None) -> None:
        self.settings = settings if settings is not None else GatewaySettings()
        self.models = self.settings.model_map()
        self.grants = Grants()
        self.store = UsageStore(Path(usage_db))
        self.metrics = _metrics(registry)
        self._server: ThreadedServer | None = None
        self._meter = Metering(self.settings, self.store, self.metrics, prices={})

    # -- life --
    async def start(self) -> None:
        prices = await self._prices()
        await asyncio.to_thread(self._serve, prices)
        log.info("LLM gateway serving %s for models %s (upstream %s)", self.local_url, ", ".join(self.models),
                 self.settings.llm_upstream)

    def _serve(self, prices: dict[str, Price]) -> None:
        s = self.settings
        self._meter.prices.update(prices)
        web = GatewayApp(self._meter, None, self.grants, self.models)

        async def setup() -> None:  # loop-bound objects are made on the gateway's loop
            web.upstream = Upstream(s)

        async def teardown() -> None:
            await web.upstream.close()

        try:
            self._server = ThreadedServer(web, s.gateway_host, s.gateway_port, on_stop=teardown)
        except OSError as exc:
            raise GatewayError(f"the LLM gateway cannot listen on {s.gateway_host}:{s.gateway_port} "
                               f"({exc.strerror or exc}); set SUBNET_GATEWAY_HOST / SUBNET_GATEWAY_PORT") from None
        self._server.start(setup)
        self._meter.on_loop = self._server.on_loop

    async def stop(self) -> None:
        await asyncio.to_thread(self._stop)

    def _stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._meter.on_loop = None
        self.store.close()

    async def _prices(self) -> dict[str, Price]:
        """Price of each public model: SUBNET_LLM_PRICES (by public or upstream name), else the
        upstream's /v1/models listing. A model without a trustworthy price stops the start."""
        configured = self.settings.configured_prices()
        prices = {public: configured.get(public) or configured.get(up) for public, up in self.models.items()}
        if all(prices.values()):
            return prices
        listed = await self._listed_prices()
        for public, upstream in self.models.items():
            prices[public] = prices[public] or listed.get(upstream)
        missing = [public for public, price in prices.items() if price is None]
        if missing:
            raise GatewayError(f"no usable price for LLM model(s) {', '.join(missing)} in {self.settings.llm_upstream}"
                               f"/models; set SUBNET_LLM_PRICES (model=in/out, USD per 1M tokens)")
        return prices

    async def _listed_prices(self) -> dict[str, Price]:
        url = self.settings.llm_upstream.rstrip("/") + "/models"
        headers = self.settings.upstream_headers()
        try:
            async with httpx.AsyncClient(timeout=self.settings.llm_connect_timeout_s + 20) as http:
                resp = await http.get(url, headers=headers)
                resp.raise_for_status()
                return prices_from_listing(resp.json())
        except (httpx.HTTPError, ValueError) as exc:
            raise GatewayError(f"cannot read LLM prices from {url} ({type(exc).__name__}: "
                               f"{str(exc)[:120]}); set SUBNET_LLM_PRICES (model=in/out, USD per 1M tokens)") from None

    # -- where it serves --
    @property
    def bound_host(self) -> str:
        return self._running().host

    @property
    def bound_port(self) -> int:
        return self._running().port

    @property
    def local_url(self) -> str:
        return f"http://{self.bound_host}:{self.bound_port}/v1"

    @property
    def public_url(self) -> str | None:
        base = self.settings.gateway_public_url
        return base.rstrip("/") + "/v1" if base else None

    def _running(self) -> ThreadedServer:
        if self._server is None:
            raise RuntimeError("the LLM gateway is not started")
        return self._server

    # -- the validator's side --
    def grant(self, round_id: int, uid: int, hotkey: str) -> LlmGrant:
        return self.grants.grant(round_id, uid, hotkey)

    def begin_task(self, round_id: int, uid: int, task_index: int) -> None:
        self._meter_or_fail().begin_task(round_id, uid, task_index)

    def end_task(self, round_id: int, uid: int, task_index: int) -> float:
        """Close the task to new calls, let in-flight ones finish (≤ llm_settle_wait_s), cancel the
        rest (charged their reservations) and return the task's metered dollars."""
        meter = self._meter_or_fail()
        meter.close_task(round_id, uid, task_index)
        self._drain(lambda key: key == (round_id, uid, task_index))
        return meter.spend(round_id, uid, task_index).task_usd

    def close_round(self, round_id: int) -> dict[int, float]:
        """Refuse every token of the round from now on (401); returns each miner's round spend."""
        meter = self._meter_or_fail()
        self.grants.close_round(round_id)
        meter.close_round_tasks(round_id)
        self._drain(lambda key: key[0] == round_id)
        return meter.books(self.store.round_spend, round_id)

    def spent(self, round_id: int, uid: int) -> float:
        return self._meter_or_fail().spend(round_id, uid).round_usd

    def _drain(self, match) -> None:
        if self._server is not None and self._server.running:
            wait = self.settings.llm_settle_wait_s
            self._server.on_loop(self._meter.drain(match, wait), timeout=wait + 30)

    def _meter_or_fail(self) -> Metering:
        return self._meter
