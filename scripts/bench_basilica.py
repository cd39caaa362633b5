#!/usr/bin/env python3
"""Measure a Basilica-mode round against the local twin: what it creates, asks and pays.

    python scripts/bench_basilica.py --miners 32 --tasks 8 --latency 0.2 --start 1.0,3.0

The twin (real basilica SDK on the wire) runs each deployment as a stand-in Actor that answers every
call after `--latency` seconds; a deployment becomes healthy `--start` seconds after its create
(uniform in the range given: image pull and boot). Time is scaled down; ratios are what count.

Printed:
  deployments created      vs M×T, what affinetes' own basilica mode would create (a pod per call)
  API requests per round   and the busiest window, vs the twin's per-client rate limit
  deployment-seconds paid  vs the busy lower bound Σ(start_i + busy_i), busy_i = ceil(T/per_miner)·latency
  dollars per round        at the recorded (estimated) price of each deployment, scaled back to real time
  reclaim after SIGKILL    a child creates K deployments and is killed -9; time for a fresh process to delete them
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import math
import multiprocessing
import os
import random
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import AsyncIterator

from subnet.util import aio
from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.deployment_client import DeploymentClient
from subnet.compute.deployments import DeploymentSpec, friendly_name
from subnet.compute.ledger import Ledger
from subnet.compute.settings import load_settings
from subnet.config import Settings
from subnet.protocol import Submission
from subnet.runtime.basilica import BasilicaRuntime
from subnet.twins.standin import EchoChallenge, serve_http
from subnet.twins.basilica_twin import BasilicaTwin
from subnet.twins.deployment_host import ActorHost
from subnet.validator.round import RoundEngine, RoundLimits

TOKEN = "bench-token"


class Timeline:
    """Wraps the runtime: when each miner's session was handed over (ready) and given back (done)."""

    def __init__(self, runtime: BasilicaRuntime) -> None:
        self.runtime = runtime
        self.name = runtime.name
        self.dedicated_hardware = runtime.dedicated_hardware
        self.spans: dict[int, tuple[float, float]] = {}

    @contextlib.asynccontextmanager
    async def open(self, submission: Submission) -> AsyncIterator[object]:
        async with self.runtime.open(submission) as session:
            ready = time.time()
            try:
                yield session
            finally:
                self.spans[submission.uid] = (ready, time.time())


class StandInActor:
    """The host's 'runtime': every deployment is the one stand-in server (its URL is all the front needs)."""

    name = "stand-in"

    def __init__(self, url: str) -> None:
        self.url = url

    @contextlib.asynccontextmanager
    async def open(self, submission: Submission) -> AsyncIterator[object]:
        yield type("Session", (), {"base_url": self.url})()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def busiest(times: list[float], window: float) -> int:
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


class RemoteTwin:
    """The twin in its own process (as Basilica is another machine), read through its admin API."""

    def __init__(self, args, port: int) -> None:
        import httpx

        parent, child = multiprocessing.get_context("fork").Pipe()
        self.proc = multiprocessing.get_context("fork").Process(target=_twin_main, args=(args, port, child),
                                                               daemon=True)
        self.proc.start()
        self.url = parent.recv()
        self._http = httpx.Client(base_url=self.url, timeout=30)

    def requests(self) -> list[dict]:
        return self._http.get("/_twin/requests").json()

    @property
    def deployments(self) -> dict:
        return self._http.get("/_twin/deployments").json()

    def starts(self) -> dict[str, float]:
        return self._http.get("/_twin/starts").json()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.join(10)


def _twin_main(args, port: int, conn) -> None:
    lo, hi = (float(x) for x in args.start.split(","))
    rng = random.Random(7)
    starts: dict[str, float] = {}

    def delay(image: str) -> float:
        return starts.setdefault(image, rng.uniform(lo, hi))

    n, window = args.rate_limit.split("/")
    host = ActorHost(StandInActor(f"http://127.0.0.1:{port}"), start_delay=delay)
    twin = BasilicaTwin(token=TOKEN, actor_host=host, rate_limit=(int(n), float(window)))
    twin.state.extra_admin = {"/_twin/starts": lambda: starts}
    conn.send(twin.start())
    threading.Event().wait()


def run_round(args, twin: RemoteTwin, home: Path) -> dict:
    ledger = Ledger(home / "ledger.sqlite")
    gpu = BasilicaGPUClient(load_settings(api_key=TOKEN, api_url=twin.url, requests_per_minute=args.pace), ledger=ledger)
    settings = Settings(home=home, start_timeout=60, tasks=args.tasks, per_miner=args.per_miner)
    runtime = BasilicaRuntime(DeploymentClient(gpu), settings, poll_s=args.poll)
    digest = lambda uid: "sha256:" + f"{uid:064x}"  # noqa: E731
    subs = [Submission(uid, f"hk{uid}", f"docker.io/m{uid}/env@{digest(uid)}", digest(uid)) for uid in range(args.miners)]
    challenge = EchoChallenge()
    limits = RoundLimits(concurrency=args.concurrency, per_miner=args.per_miner, start_concurrency=args.miners,
                         call_timeout=30)
    timeline = Timeline(runtime)
    started = time.time()
    outcomes = aio.run(RoundEngine(timeline, challenge, limits).run(subs, challenge.make_tasks(b"bench", args.tasks)))
    wall = time.time() - started
    verified = sum(t.verified for o in outcomes for t in o.tasks)
    failures = collections.Counter(f"{t.fault.value if t.fault else 'infra'}: {t.reason[:80]}"
                                   for o in outcomes for t in o.tasks if not t.verified)
    reqs = [r for r in twin.requests() if r["at"] >= started]
    creates = {r["body"]["instanceName"]: r["at"] for r in reqs if (r["method"], r["path"]) == ("POST", "/deployments")}
    by_id = {d.remote_id: d.name for d in ledger.entries("deployment")}
    deletes = {by_id[r["path"].rsplit("/", 1)[-1]]: r["at"] for r in reqs if r["method"] == "DELETE"}
    paid_s = sum(deletes[n] - creates[n] for n in creates if n in deletes)
    uid_of = {n: int(n.split("-u", 1)[1].split("-", 1)[0]) for n in creates}
    calling_s = {uid_of[n]: done - ready for n, (ready, done) in
                 ((n, timeline.spans[uid_of[n]]) for n in creates if uid_of[n] in timeline.spans)}
    images = {uid_of[n]: f"docker.io/m{uid_of[n]}/env@{digest(uid_of[n])}" for n in creates}
    price = float(ledger.entries("deployment")[0].hourly_rate or 0)
    return {"wall": wall, "verified": verified, "requests": len(reqs), "creates": len(creates),
            "deleted": len(deletes), "paid_s": paid_s, "price": price,
            "busiest_1s": busiest([r["at"] for r in reqs], 1.0), "failures": failures,
            "calling_s": calling_s, "images": images}


def reclaim_after_sigkill(twin: RemoteTwin, home: Path, count: int) -> tuple[int, float, int]:
    def child() -> None:
        ledger = Ledger(home / "ledger.sqlite")
        client = DeploymentClient(BasilicaGPUClient(load_settings(api_key=TOKEN, api_url=twin.url), ledger=ledger))
        identity = Settings(home=home).identity
        for uid in range(count):
            client.create(DeploymentSpec(name=friendly_name(identity, uid, "sha256:" + "a" * 64), image="x@sha256:"
                                         + "a" * 64, gpu_models=["V100"]), owner=f"validator:{identity}",
                          hourly_rate=None)
        time.sleep(3600)

    proc = multiprocessing.get_context("fork").Process(target=child, daemon=True)
    proc.start()
    while len(twin.deployments) < count and proc.is_alive():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    left = len(twin.deployments)
    started = time.monotonic()
    ledger = Ledger(home / "ledger.sqlite")
    runtime = BasilicaRuntime(DeploymentClient(BasilicaGPUClient(load_settings(api_key=TOKEN, api_url=twin.url),
                                                                 ledger=ledger)), Settings(home=home))
    runtime.reclaim_forgotten()
    return left, time.monotonic() - started, len(twin.deployments)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--miners", type=int, default=32)
    p.add_argument("--tasks", type=int, default=8)
    p.add_argument("--per-miner", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--latency", type=float, default=0.2, help="seconds per call")
    p.add_argument("--start", default="1.0,3.0", help="deployment start time range, seconds")
    p.add_argument("--poll", type=float, default=0.1, help="poll interval, seconds (production 3 s ÷ time scale)")
    p.add_argument("--rate-limit", default="60/2", help="twin's per-client limit, REQUESTS/SECONDS (production 60/60 s)")
    p.add_argument("--time-scale", type=float, default=30.0, help="real seconds per bench second (for dollars)")
    p.add_argument("--pace", type=float, default=1500.0,
                   help="the client's own requests per minute (production 50/min × the time scale)")
    args = p.parse_args()
    port = free_port()
    server = multiprocessing.Process(target=serve_http, args=(port, args.latency), daemon=True)
    server.start()
    time.sleep(1.0)
    twin = RemoteTwin(args, port)
    with tempfile.TemporaryDirectory() as tmp:
        r = run_round(args, twin, Path(tmp) / "home")
        starts = twin.starts()
        busy = math.ceil(args.tasks / args.per_miner) * args.latency
        bound = sum(s + busy for s in starts.values())
        # The calls themselves go through the twin's Python front to a stand-in: their real span,
        # not the nominal latency, is what the runtime cannot shorten.
        own_bound = sum(starts[r["images"][uid]] + span for uid, span in r["calling_s"].items())
        print(f"round: {args.miners} miners × {args.tasks} tasks, latency {args.latency}s, start {args.start}s, "
              f"poll {args.poll}s — wall {r['wall']:.2f}s, {r['verified']}/{args.miners * args.tasks} verified")
        for reason, count in r["failures"].most_common(3):
            print(f"  not verified ×{count}: {reason}")
        print(f"deployments created      {r['creates']}  (affinetes' basilica mode: {args.miners * args.tasks}); "
              f"deleted {r['deleted']}, left {len(twin.deployments)}")
        print(f"API requests per round   {r['requests']}  (busiest 1 s window: {r['busiest_1s']}, limit {args.rate_limit})")
        print(f"deployment-seconds paid  {r['paid_s']:.1f}  vs busy lower bound {bound:.1f}  → {r['paid_s'] / bound:.2f}×"
              f"  (vs start + the calls' real span {own_bound:.1f} → {r['paid_s'] / own_bound:.2f}×: the runtime's own overhead)")
        dollars = r["paid_s"] * args.time_scale / 3600 * r["price"]
        print(f"dollars per round        ${dollars:.4f} at ${r['price']}/h each, time ×{args.time_scale:g} "
              f"(bench seconds → real seconds)")
        left, took, after = reclaim_after_sigkill(twin, Path(tmp) / "killed", count=8)
        print(f"reclaim after SIGKILL    {left} left by the killed process, deleted in {took:.2f}s, {after} remain")
    twin.close()
    server.terminate()


if __name__ == "__main__":
    main()
