"""What a running validator shows its operator: Prometheus metrics, /health, /leaderboard, JSON logs.

`SUBNET_METRICS_PORT` (0: off) serves, on `SUBNET_METRICS_HOST` (loopback by default):
- `/health`       200 `{"status": "ok", ...}` with the last successful round;
- `/metrics`      Prometheus text format (prometheus-client), every name prefixed `subnet_`;
- `/leaderboard`  the last round's miners and weights as JSON, read from the subnet's store.
`SUBNET_LOG_JSON=1` turns every log record into one JSON object per line.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
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
        # Per call and per model: the gateway's own subnet_llm_* metrics, on this same registry.
        self.llm_round_usd = Gauge("subnet_llm_round_usd", "LLM dollars the gateway metered per uid in the last "
                                   "round (an LLM challenge only)", ["uid"], registry=r)
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
        self.llm_round_usd.clear()
        for miner in report.miners:
            if miner.llm_usd and not miner.cached:
                self.llm_round_usd.labels(str(miner.uid)).set(miner.llm_usd)
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
    async def open(self, submission, environment=None) -> AsyncIterator[Any]:
        self._gauge.inc()
        try:
            opened = self._runtime.open(submission, environment) if environment else self._runtime.open(submission)
            async with opened as actor:
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
            "burn_uid": report.get("burn_uid"), "burn_target": report.get("burn_target", ""),
            "compute": report.get("compute") or {}}


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
    """/health, /metrics and /leaderboard, served by an event loop on a daemon thread of its own.

    Made to be scraped, and to outlast clients that are not scrapers (slowloris): a connection must
    send its request head within `request_timeout` seconds and take its answer within as long
    again; the head is at most 16 KiB; one request per connection; at most `max_connections` open
    at once (more are closed on arrival). An idle connection holds a socket and a coroutine, never
    a thread, so slow clients cannot crowd out `/health`; store reads run on two worker threads."""

    def __init__(self, metrics: Metrics, store_path: Path, host: str, port: int, spend=lambda: Spend(),
                 *, request_timeout: float = 10.0, max_connections: int = 256) -> None:
        self.metrics = metrics
        self._answer = _answerer(metrics, store_path, spend)
        self._timeout = request_timeout
        self._max = max_connections
        self._open = 0
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="subnet-metrics")
        self._loop = asyncio.new_event_loop()
        ready, failed = threading.Event(), []
        self._thread = threading.Thread(target=self._serve, args=(host, port, ready, failed),
                                        name="subnet-metrics", daemon=True)
        self._thread.start()
        ready.wait()
        if failed:
            raise failed[0]

    @property
    def open_connections(self) -> int:
        return self._open

    def close(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
        self._workers.shutdown(wait=False, cancel_futures=True)

    def _serve(self, host: str, port: int, ready: threading.Event, failed: list) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, host, port, limit=_MAX_HEAD, backlog=128))
            self.port = server.sockets[0].getsockname()[1]
        except OSError as exc:
            failed.append(exc)
            self._loop.close()
            return
        finally:
            ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._open >= self._max:
            writer.transport.abort()
            return
        self._open += 1
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self._timeout)
            method, path = _request_line(head)
            if method not in ("GET", "HEAD"):
                code, body, kind = 405, b'{"error": "GET only"}', "application/json"
            elif path == "/health":  # in memory: never queued behind a slow store read
                code, body, kind = self._answer(path)
            else:
                work = asyncio.get_running_loop().run_in_executor(self._workers, self._answer, path)
                code, body, kind = await asyncio.wait_for(work, self._timeout)
            writer.write(_response(code, b"" if method == "HEAD" else body, kind, len(body)))
            await asyncio.wait_for(writer.drain(), self._timeout)
            writer.close()
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
            writer.transport.abort()  # slow, silent, oversized or malformed: dropped, nothing waits on it
        finally:
            self._open -= 1


_MAX_HEAD = 16 << 10
_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}


def _request_line(head: bytes) -> tuple[str, str]:
    parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        raise ValueError("not an HTTP request")
    return parts[0], parts[1].split("?", 1)[0]


def _response(code: int, body: bytes, kind: str, length: int) -> bytes:
    head = (f"HTTP/1.1 {code} {_REASONS.get(code, 'Error')}\r\nContent-Type: {kind}\r\n"
            f"Content-Length: {length}\r\nConnection: close\r\n\r\n")
    return head.encode("latin-1") + body


def _answerer(metrics: Metrics, store_path: Path, spend):
    """path → (status, body, content type); blocking (store reads), run on a worker thread."""

    def as_json(code: int, data: dict) -> tuple[int, bytes, str]:
        return code, json.dumps(data).encode(), "application/json"

    def answer(path: str) -> tuple[int, bytes, str]:
        try:
            if path == "/metrics":
                with contextlib.suppress(Exception):  # a locked ledger must not break a scrape
                    spent = spend()
                    metrics.spend.set(float(spent.total))
                    metrics.spend_estimated.set(float(spent.estimated))
                return 200, metrics.render(), CONTENT_TYPE_LATEST
            if path == "/health":
                return as_json(200, {"status": "ok", "last_round_at": metrics.last_round_at,
                                     "round_in_progress": metrics.in_round})
            if path == "/leaderboard":
                return as_json(200, leaderboard(store_path))
            return as_json(404, {"error": "not found: try /health, /metrics, /leaderboard"})
        except Exception as exc:  # noqa: BLE001 - the endpoint never takes the validator down
            return as_json(500, {"error": f"{type(exc).__name__}: {exc}"[:300]})

    return answer


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
