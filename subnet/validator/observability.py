"""What a running validator shows its operator: Prometheus metrics, /health, /leaderboard, JSON logs.

`SUBNET_METRICS_PORT` (0: off) serves, on `SUBNET_METRICS_HOST` (loopback by default):
- `/health`       200 `{"status": "ok", ...}` with the last successful round;
- `/metrics`      Prometheus text format (prometheus-client), every name prefixed `subnet_`;
- `/leaderboard`  the last round's miners and weights as JSON, read from the subnet's store.
`SUBNET_LOG_JSON=1` turns every log record into one JSON object per line.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, AsyncIterator, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from subnet.compute.ledger import Spend
from subnet.state.store import Store
from subnet.state.identity import validator_identity

log = logging.getLogger(__name__)

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class Metrics:
    """The validator's metrics in a registry of their own (tests can run several side by side)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.rounds = Counter("subnet_rounds", "Validator rounds finished", registry=r)
        self.round_running = Gauge("subnet_round_in_progress", "1 while a round runs", registry=r)
        self.evaluations = Counter("subnet_evaluations", "Tasks evaluated, by outcome and fault kind",
                                   ["outcome", "fault"], registry=r)
        self.cache_hits = Counter("subnet_cache_hits", "Miners scored from a stored evaluation", registry=r)
        self.latency = Histogram("subnet_call_latency_seconds", "Validator-measured Actor call latency",
                                 buckets=_LATENCY_BUCKETS, registry=r)
        self.actors = Gauge("subnet_active_actors",
                            "Actors running now (containers in Docker mode, deployments in Basilica mode)",
                            ["mode"], registry=r)
        self.spend = Gauge("subnet_spend_usd", "Basilica spend so far by this validator, USD", registry=r)
        self.spend_estimated = Gauge("subnet_spend_estimated_usd",
                                     "The part of subnet_spend_usd that is an estimate (list price × time), not "
                                     "billed: Basilica reports no price for deployments", registry=r)
        self.weights = Counter("subnet_weights", "Weight submissions, by result", ["status"], registry=r)
        self.last_round = Gauge("subnet_last_successful_round_timestamp_seconds",
                                "When the last round finished", registry=r)
        self.last_round_id = Gauge("subnet_last_successful_round", "Id of the last finished round", registry=r)
        self.last_weights_block = Gauge("subnet_last_weights_block", "Block of the last weights sent", registry=r)
        self.weight = Gauge("subnet_weight", "Weight per uid computed by the last round (sent or not)", ["uid"],
                            registry=r)
        self.in_round = False  # for /health, kept beside the gauges
        self.last_round_at: float | None = None

    # -- RoundObserver ---------------------------------------------------------------------------
    def round_started(self, round_id: int) -> None:
        self.in_round = True
        self.round_running.set(1)

    def round_aborted(self) -> None:
        self._round_over()

    def _round_over(self) -> None:
        self.in_round = False
        self.round_running.set(0)

    def round_finished(self, report, fresh: Sequence, receipt) -> None:
        self._round_over()
        self.rounds.inc()
        self.cache_hits.inc(report.cached)
        for outcome in fresh:
            for task in outcome.tasks:
                kind = "infra" if task.infra else "verified" if task.verified else "failed"
                fault = "infra" if task.infra else task.fault.value if task.fault else "none"
                self.evaluations.labels(kind, fault).inc()
                if task.latency_ms is not None:
                    self.latency.observe(task.latency_ms / 1000.0)
        status = receipt.status if receipt is not None else "not_set"
        self.weights.labels(status).inc()
        if receipt is not None:
            self.last_weights_block.set(receipt.block)
        self.weight.clear()  # a uid no longer weighted must not keep its old value
        for uid, value in report.weights.items():
            self.weight.labels(str(uid)).set(value)
        self.last_round_at = time.time()
        self.last_round.set(self.last_round_at)
        self.last_round_id.set(report.round_id)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class CountingRuntime:
    """Wraps a runtime so the metrics know how many Actors are running right now."""

    def __init__(self, runtime: Any, gauge: Gauge) -> None:
        self._runtime = runtime
        self._gauge = gauge.labels(getattr(runtime, "name", "unknown"))
        self.name = getattr(runtime, "name", "unknown")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)

    @contextlib.asynccontextmanager
    async def open(self, submission) -> AsyncIterator[Any]:
        self._gauge.inc()
        try:
            async with self._runtime.open(submission) as actor:
                yield actor
        finally:
            self._gauge.dec()


def leaderboard(store_path: Path) -> dict[str, Any]:
    """The last round's miners (best first) and weights, from the store."""
    store = Store(store_path)
    try:
        report = store.last_report() or {}
        scores = store.smoothed_scores()
    finally:
        store.close()
    miners = sorted(report.get("miners", []), key=lambda m: (-m.get("weight", 0), m.get("uid", 0)))
    for miner in miners:
        miner["smoothed"] = round(scores.get(miner.get("hotkey", ""), 0.0), 6)
    return {"round": report.get("round_id"), "block": report.get("block"), "challenge": report.get("challenge"),
            "miners": miners, "weights": report.get("weights", {}), "weights_set": report.get("weights_set"),
            "burn_uid": report.get("burn_uid"), "burn_target": report.get("burn_target", "")}


def ledger_spend(ledger_path: Path, owner: str) -> float:
    """USD spent by `owner` according to the spend ledger (0 when there is no ledger)."""
    return float(ledger_spend_split(ledger_path, owner).total)


def ledger_spend_split(ledger_path: Path, owner: str) -> Spend:
    """What `owner` spent, billed and estimated apart (nothing when there is no ledger)."""
    if not ledger_path.exists():
        return Spend()
    from subnet.compute.deployments import ledger_owner
    from subnet.compute.ledger import Ledger, spend_of

    with Ledger(ledger_path) as ledger:
        owners = ("", owner, ledger_owner(owner))  # "": rows from before validator ids
        return spend_of((e for e in ledger.entries() if e.owner in owners), time.time())


class MetricsServer:
    """/health, /metrics and /leaderboard on a daemon thread."""

    def __init__(self, metrics: Metrics, store_path: Path, host: str, port: int, spend=lambda: Spend()) -> None:
        self.metrics = metrics
        handler = _handler(metrics, store_path, spend)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="subnet-metrics", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(metrics: Metrics, store_path: Path, spend):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            try:
                if self.path == "/metrics":
                    with contextlib.suppress(Exception):  # a locked ledger must not break a scrape
                        spent = spend()
                        metrics.spend.set(float(spent.total))
                        metrics.spend_estimated.set(float(spent.estimated))
                    self._send(200, metrics.render(), CONTENT_TYPE_LATEST)
                elif self.path == "/health":
                    self._json(200, {"status": "ok", "last_round_at": metrics.last_round_at,
                                     "round_in_progress": metrics.in_round})
                elif self.path == "/leaderboard":
                    self._json(200, leaderboard(store_path))
                else:
                    self._json(404, {"error": "not found: try /health, /metrics, /leaderboard"})
            except Exception as exc:  # noqa: BLE001 - the endpoint never takes the validator down
                self._json(500, {"error": f"{type(exc).__name__}: {exc}"[:300]})

        def _json(self, code: int, body: dict) -> None:
            self._send(code, json.dumps(body).encode(), "application/json")

        def _send(self, code: int, body: bytes, content_type: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:  # scrapes every few seconds would flood the log
            pass

    return Handler


class Observability:
    """What `subnet validator run` starts: metrics (always) and the HTTP endpoint (when a port is set)."""

    def __init__(self, metrics: Metrics, server: MetricsServer | None) -> None:
        self.metrics = metrics
        self.server = server

    def round_started(self, round_id: int) -> None:
        self.metrics.round_started(round_id)

    def round_finished(self, report, fresh, receipt) -> None:
        self.metrics.round_finished(report, fresh, receipt)

    def round_aborted(self) -> None:
        self.metrics.round_aborted()

    def wrap(self, runtime: Any) -> CountingRuntime:
        return CountingRuntime(runtime, self.metrics.actors)

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def start_observability(settings, store: Store) -> Observability:
    metrics = Metrics()
    server = None
    if settings.metrics_port:
        owner = validator_identity(settings.home)
        server = MetricsServer(metrics, store.path, settings.metrics_host, settings.metrics_port,
                               spend=lambda: ledger_spend_split(settings.ledger_path, owner))
        log.info("metrics on http://%s:%d/metrics", settings.metrics_host, server.port)
    return Observability(metrics, server)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
                 "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(json_lines: bool, level: int = logging.INFO) -> None:
    handler = logging.StreamHandler()
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
