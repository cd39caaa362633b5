#!/usr/bin/env python3
"""Measure a Basilica-mode round against the local twin: what it creates, asks, pays and blames.

    python scripts/bench_basilica.py --profile production --miners 16,64
    python scripts/bench_basilica.py --miners 32 --tasks 8 --latency 0.2 --start 1.0,3.0

The twin (real basilica SDK on the wire, in its own process as Basilica is another machine) runs
each deployment as a stand-in Actor that answers every call after `--latency` seconds. Time is
scaled: one bench second is `--time-scale` production seconds, and the validator runs on its
DEFAULT settings scaled the same way (start budget, boot deadline, poll interval, request pace,
the server's 60/min limit).
  --profile none        a deployment serves `--start` seconds after its create (uniform in the range)
  --profile production  fates drawn as production deals them (`twins/basilica_profile.py`): pulls of
                        30-300 s and scheduling of 2-20 s (production seconds), 5 % of deployments
                        evicted, preempted or spot-reclaimed within a minute of serving

Printed per miner count:
  deployments created      vs M×T, what affinetes' own basilica mode would create (a pod per call)
  API requests per round   and the busiest window, vs the twin's per-client rate limit
  deployment-seconds paid  vs the busy bound Σ(start_i + busy_i): start_i the twin's own schedule +
                           pull, busy_i = ceil(T/per_miner)·latency (cut short where a disruption
                           ended the deployment): what no runtime can pay less than
  dollars per round        at the recorded (estimated) price of each deployment, in production seconds
  miners wrongly blamed    every stand-in is honest: any miner fault is a wrong one (goal 0)
  reclaim after SIGKILL    a child creates K deployments and is killed -9; time for a fresh process to delete them
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import math
import multiprocessing
import os
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import AsyncIterator

from subnet.compute.basilica import BasilicaGPUClient
from subnet.compute.deployment_client import DeploymentClient
from subnet.compute.deployments import DeploymentSpec, friendly_name
from subnet.compute.ledger import Ledger
from subnet.compute.settings import load_settings
from subnet.compute.start_budget import StartBudget
from subnet.config import Settings
from subnet.protocol import Submission
from subnet.runtime.basilica import BasilicaRuntime
from subnet.state.identity import validator_identity
from subnet.twins.basilica_deployments import Generation
from subnet.twins.basilica_profile import ProductionProfile
from subnet.twins.basilica_twin import BasilicaTwin
from subnet.twins.deployment_host import ActorHost
from subnet.twins.standin import EchoChallenge, serve_http
from subnet.util import aio
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
    """The twin in its own process, read through its admin API."""

    def __init__(self, args, port: int) -> None:
        import httpx

        # spawned, not forked: by the second round this process has threads whose locks a fork would copy held
        spawn = multiprocessing.get_context("spawn")
        parent, child = spawn.Pipe()
        self.proc = spawn.Process(target=_twin_main, args=(args, port, child), daemon=True)
        self.proc.start()
        self.url = parent.recv()
        self._http = httpx.Client(base_url=self.url, timeout=30)

    def requests(self) -> list[dict]:
        return self._http.get("/_twin/requests").json()

    @property
    def deployments(self) -> dict:
        return self._http.get("/_twin/deployments").json()

    def fates(self) -> dict[str, dict]:
        return self._http.get("/_twin/fates").json()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.join(10)


def _twin_main(args, port: int, conn) -> None:
    n, window = args.rate_limit.split("/")
    twin = BasilicaTwin(token=TOKEN, actor_host=ActorHost(StandInActor(f"http://127.0.0.1:{port}")),
                        rate_limit=(int(n), float(window)))
    twin.state.generation = Generation.named(args.generation)
    if args.profile == "production":
        twin.state.profile = ProductionProfile(time_scale=args.time_scale, disrupted=args.disrupted, seed=args.seed)
    else:
        lo, hi = (float(x) for x in args.start.split(","))
        twin.state.profile = ProductionProfile(pull_s=(lo, hi), schedule_s=(0.0, 0.0), disrupted=0.0, seed=args.seed)
    seen: dict[str, dict] = {}

    def fates() -> dict:  # kept after deletion: the bench reads them once the round is over
        with twin.state.lock:
            for d in twin.state.deployments.values():
                f = d.fate
                seen[d.friendly_name] = {"start": f.schedule_s + f.pull_s, "disrupted": d.disrupted,
                                         "after_ready": f.disruption.after_ready_s if f.disruption else None}
        return seen

    twin.state.extra_admin = {"/_twin/fates": fates}
    conn.send(twin.start())
    while True:  # sample the fates while deployments exist (a deleted one is gone from the state)
        fates()
        time.sleep(0.02)


def run_round(args, twin: RemoteTwin, home: Path, miners: int) -> dict:
    k = args.time_scale
    ledger = Ledger(home / "state.sqlite")
    gpu = BasilicaGPUClient(load_settings(api_key=TOKEN, api_url=twin.url, requests_per_minute=args.pace), ledger=ledger)
    concurrency = args.concurrency or miners * args.per_miner
    settings = Settings(home=home, tasks=args.tasks, per_miner=args.per_miner, concurrency=concurrency)
    budget = StartBudget(settings.basilica_start_timeout, settings.start_timeout).scaled(k)
    runtime = BasilicaRuntime(DeploymentClient(gpu), settings, poll_s=3.0 / k, budget=budget)
    digest = lambda uid: "sha256:" + f"{uid:064x}"  # noqa: E731
    subs = [Submission(uid, f"hk{uid}", f"docker.io/m{uid}/env@{digest(uid)}", digest(uid)) for uid in range(miners)]
    challenge = EchoChallenge()
    # The call deadline is NOT scaled: the stand-in front is this machine's Python, not Basilica's gateway,
    # and a scaled 1 s deadline would fail honest calls queued there (the miner is not slow; this host is).
    limits = RoundLimits(concurrency=concurrency, per_miner=args.per_miner, start_concurrency=settings.start_concurrency,
                         call_timeout=settings.call_timeout)
    timeline = Timeline(runtime)
    started = time.time()
    aio.run(runtime.preflight(subs))
    outcomes = aio.run(RoundEngine(timeline, challenge, limits).run(subs, challenge.make_tasks(b"bench", args.tasks)))
    wall = time.time() - started
    time.sleep(0.1)  # the fate sampler's last look
    fates = twin.fates()
    reqs = [r for r in twin.requests() if r["at"] >= started]
    creates: dict[str, float] = {}
    for r in reqs:
        if (r["method"], r["path"]) == ("POST", "/deployments"):
            creates.setdefault(r["body"]["instanceName"], r["at"])
    by_id = {d.remote_id: d.name for d in ledger.entries("deployment")}
    deletes = {by_id[r["path"].rsplit("/", 1)[-1]]: r["at"] for r in reqs
               if r["method"] == "DELETE" and r["path"].rsplit("/", 1)[-1] in by_id}
    paid_s = sum(deletes[n] - creates[n] for n in creates if n in deletes)
    busy = math.ceil(args.tasks / args.per_miner) * args.latency
    bound = sum(f["start"] + (min(busy, f["after_ready"]) if f["disrupted"] else busy)
                for name, f in fates.items() if name in creates)
    # The same with each miner's real calling span (ready → done) for busy_i: what is left is the
    # runtime's own overhead (noticing ready, health, delete), apart from this machine's slow stand-in front.
    uid_of = {n: int(n.split("-u", 1)[1].split("-", 1)[0]) for n in creates}
    spans = {n: timeline.spans[uid_of[n]][1] - timeline.spans[uid_of[n]][0] for n in creates if uid_of[n] in timeline.spans}
    own = sum(fates[n]["start"] + spans.get(n, 0.0) for n in creates if n in fates)
    blamed = [o for o in outcomes if any(t.fault is not None and not t.infra for t in o.tasks)]
    failures = collections.Counter(f"{t.fault.value if t.fault else 'infra'}: {t.reason[:90]}"
                                   for o in outcomes for t in o.tasks if not t.verified)
    price = float(ledger.entries("deployment")[0].hourly_rate or 0)
    return {"wall": wall, "verified": sum(t.verified for o in outcomes for t in o.tasks), "requests": len(reqs),
            "creates": len(creates), "deleted": len(deletes), "left": len(twin.deployments), "paid_s": paid_s,
            "bound": bound, "own": own, "price": price, "busiest": busiest([r["at"] for r in reqs], float(args.rate_limit.split("/")[1])),
            "failures": failures, "blamed": len(blamed), "disrupted": sum(1 for f in fates.values() if f["disrupted"])}


def _create_and_hang(url: str, home: Path, count: int) -> None:
    ledger = Ledger(home / "state.sqlite")
    client = DeploymentClient(BasilicaGPUClient(load_settings(api_key=TOKEN, api_url=url), ledger=ledger))
    identity = validator_identity(home)
    for uid in range(count):
        client.create(DeploymentSpec(name=friendly_name(identity, uid, "sha256:" + "a" * 64), image="x@sha256:"
                                     + "a" * 64, gpu_models=["TESLA V100"]), owner=f"validator:{identity}",
                      hourly_rate=None)
    time.sleep(3600)


def reclaim_after_sigkill(twin: RemoteTwin, home: Path, count: int) -> tuple[int, float, int]:
    proc = multiprocessing.get_context("spawn").Process(target=_create_and_hang, args=(twin.url, home, count),
                                                        daemon=True)
    proc.start()
    while len(twin.deployments) < count and proc.is_alive():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    left = len(twin.deployments)
    started = time.monotonic()
    ledger = Ledger(home / "state.sqlite")
    runtime = BasilicaRuntime(DeploymentClient(BasilicaGPUClient(load_settings(api_key=TOKEN, api_url=twin.url),
                                                                 ledger=ledger)), Settings(home=home))
    runtime.reclaim_forgotten()
    return left, time.monotonic() - started, len(twin.deployments)


def report(args, miners: int, r: dict) -> None:
    k = args.time_scale
    print(f"\n== {miners} miners × {args.tasks} tasks, latency {args.latency * k:g}s, profile {args.profile}, "
          f"generation {args.generation}, time ×{k:g}: wall {r['wall']:.2f}s ({r['wall'] * k / 60:.1f} production min), "
          f"{r['verified']}/{miners * args.tasks} verified, {r['disrupted']} disrupted")
    for reason, count in r["failures"].most_common(4):
        print(f"  not verified ×{count}: {reason}")
    print(f"deployments created      {r['creates']}  (affinetes' basilica mode: {miners * args.tasks}); "
          f"deleted {r['deleted']}, left {r['left']}")
    print(f"API requests per round   {r['requests']}  (busiest window: {r['busiest']}, limit {args.rate_limit})")
    print(f"deployment-seconds paid  {r['paid_s'] * k:.0f}  vs busy bound {r['bound'] * k:.0f} (production s)  "
          f"→ {r['paid_s'] / r['bound']:.2f}×  (vs start + the calls' real span {r['own'] * k:.0f} → "
          f"{r['paid_s'] / r['own']:.2f}×: the runtime's own overhead)")
    print(f"dollars per round        ${r['paid_s'] * k / 3600 * r['price']:.4f} at ${r['price']}/h each (an estimate: "
          f"list price × time)")
    print(f"miners wrongly blamed    {r['blamed']}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=("none", "production"), default="none")
    p.add_argument("--generation", choices=("today", "srv"), default="today", help="which server the twin plays")
    p.add_argument("--miners", default="32", help="miner counts, comma-separated (one round each)")
    p.add_argument("--tasks", type=int, default=8)
    p.add_argument("--per-miner", type=int, default=4)
    p.add_argument("--concurrency", type=int, default=0,
                   help="calls in flight overall (default: miners × per-miner, so no ready GPU waits for a call slot)")
    p.add_argument("--latency", type=float, default=0.2, help="seconds per call (bench seconds)")
    p.add_argument("--start", default="1.0,3.0", help="profile none: deployment start time range, bench seconds")
    p.add_argument("--disrupted", type=float, default=0.05, help="profile production: share of deployments disrupted")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--time-scale", type=float, default=30.0, help="production seconds per bench second")
    p.add_argument("--rate-limit", default="", help="twin's per-client limit, REQUESTS/SECONDS (default 60/min, scaled)")
    p.add_argument("--pace", type=float, default=0.0, help="the client's requests per minute (default 50/min, scaled)")
    args = p.parse_args()
    args.rate_limit = args.rate_limit or f"60/{60 / args.time_scale:g}"
    args.pace = args.pace or 50 * args.time_scale
    port = free_port()
    server = multiprocessing.Process(target=serve_http, args=(port, args.latency), daemon=True)
    server.start()
    time.sleep(1.0)
    with tempfile.TemporaryDirectory() as tmp:
        for miners in (int(m) for m in args.miners.split(",")):
            twin = RemoteTwin(args, port)
            try:
                report(args, miners, run_round(args, twin, Path(tmp) / f"home{miners}", miners))
            finally:
                twin.close()
        twin = RemoteTwin(args, port)
        try:
            left, took, after = reclaim_after_sigkill(twin, Path(tmp) / "killed", count=8)
            print(f"\nreclaim after SIGKILL    {left} left by the killed process, deleted in {took:.2f}s, {after} remain")
        finally:
            twin.close()
    server.terminate()


if __name__ == "__main__":
    main()
