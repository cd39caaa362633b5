#!/usr/bin/env python3
"""Measure the round engine with stand-in Actors of fixed latency.

    python scripts/bench_round.py --miners 64 --tasks 16 --concurrency 32 --latency 0.05

Two transports, measured side by side in one run:
  memory  the engine alone: in-process Actors that sleep, then echo (no HTTP)
  http    the production call path: affinetes URL mode over loopback HTTP, with the size-capped
          client, against a stand-in Actor server in a separate process (its CPU is not counted)

Printed per transport: wall time, ideal wall time (latency × the number of waves the limits
force), efficiency = ideal ÷ wall (1.0 is perfect), and validator overhead per call = the
validator process's CPU time ÷ calls. Actor start-up (creating each miner's affinetes session) is
timed apart: wall and CPU are counted from the moment the last Actor has started.

Then the whole validator round (`--service`, on by default): commitments read from a devchain,
scanned, run through the engine with in-process Actors, stored, scored, weights set — twice. The
first round evaluates every image; the second has no changed image, so it must start no Actor
at all and is scored from the stored results. Printed: wall and CPU of each round, Actors
started, and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import multiprocessing
import socket
import time
from typing import AsyncIterator

from subnet.util import aio
from subnet.protocol import Submission
from subnet.runtime.affinetes_session import AffinetesSession
from subnet.twins.standin import EchoChallenge, StandInRuntime, serve_http
from subnet.validator.round import RoundEngine, RoundLimits


class HttpStandInRuntime:
    """Every miner's session is its own affinetes URL env pointing at the stand-in server."""

    name = "http-stand-in"

    def __init__(self, url: str) -> None:
        self.url = url
        self.start_cpu_s = 0.0  # CPU spent provisioning sessions, reported apart from calls
        self.started_at = 0.0

    @contextlib.asynccontextmanager
    async def open(self, submission: Submission) -> AsyncIterator[AffinetesSession]:
        cpu = time.process_time()
        session = AffinetesSession.for_url(self.url, 1 << 20)
        self.start_cpu_s += time.process_time() - cpu
        self.started_at = time.perf_counter()
        try:
            yield session
        finally:
            await session.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise SystemExit("stand-in server did not start")


def measure(runtime, args) -> dict:
    limits = RoundLimits(concurrency=args.concurrency, per_miner=args.per_miner, start_concurrency=64,
                         call_timeout=30, breaker_faults=2)
    subs = [Submission(uid, f"hk{uid}", f"m{uid}", f"sha256:{uid:064x}") for uid in range(args.miners)]
    challenge = EchoChallenge()
    tasks = challenge.make_tasks(b"bench", args.tasks)
    engine = RoundEngine(runtime, challenge, limits)
    calls = args.miners * args.tasks
    waves = max(math.ceil(calls / args.concurrency), math.ceil(args.tasks / args.per_miner))
    ideal = waves * args.latency
    cpu0, wall0 = time.process_time(), time.perf_counter()
    outcomes = aio.run(engine.run(subs, tasks))
    end = time.perf_counter()
    start_cpu = getattr(runtime, "start_cpu_s", 0.0)
    # Calls begin once every Actor has started; wall and CPU are counted from there.
    wall = end - (getattr(runtime, "started_at", 0.0) or wall0)
    cpu = time.process_time() - cpu0 - start_cpu
    verified = sum(t.verified for o in outcomes for t in o.tasks)
    if verified != calls:
        raise SystemExit(f"only {verified}/{calls} tasks verified: the benchmark is invalid")
    return {"wall_s": round(wall, 4), "ideal_s": round(ideal, 4), "efficiency": round(ideal / wall, 4),
            "overhead_ms_per_call": round(cpu / calls * 1000, 4), "calls": calls,
            "start_ms_per_actor": round(start_cpu / args.miners * 1000, 3)}


def measure_service(args) -> dict:
    """Two full validator rounds: everything new, then nothing changed."""
    import resource
    import tempfile
    from pathlib import Path

    from subnet.chain.devchain import DevChain
    from subnet.config import Settings
    from subnet.state.store import Store
    from subnet.validator.service import Validator, plan_round

    with tempfile.TemporaryDirectory(prefix="bench-round-") as tmp:
        chain = DevChain(Path(tmp) / "devchain.sqlite", hotkey="validator")
        chain.register(1, "validator", validator_permit=True)
        for uid in range(args.miners):
            hotkey = f"miner{uid}"
            chain.register(1, hotkey)
            chain.as_hotkey(hotkey).commit(1, f"ghcr.io/bench/m{uid}@sha256:{uid:064x}".encode())
        settings = Settings(home=Path(tmp), netuid=1, tasks=args.tasks, concurrency=args.concurrency,
                            per_miner=args.per_miner, start_concurrency=64, call_timeout=30)
        runtime = StandInRuntime(args.latency)
        store = Store(Path(tmp) / "subnet.sqlite")
        validator = Validator(chain, runtime, EchoChallenge(), settings, store)
        rounds = []
        for _ in range(2):
            started_actors = runtime.closed
            cpu0, wall0 = time.process_time(), time.perf_counter()
            plan = plan_round(chain.commitments(1), lambda ref: str(ref))
            report = aio.run(validator.run_round(plan, b"bench"))
            rounds.append({"wall_s": round(time.perf_counter() - wall0, 4), "cpu_s": round(time.process_time() - cpu0, 4),
                           "actors_started": runtime.closed - started_actors, "evaluated": report.evaluated,
                           "cached": report.cached, "weights": report.weights_set})
            chain.advance(1)
        store.close()
        chain.close()
    calls = args.miners * args.tasks
    waves = max(math.ceil(calls / args.concurrency), math.ceil(args.tasks / args.per_miner))
    first = rounds[0]
    first["efficiency"] = round(waves * args.latency / first["wall_s"], 4)
    first["cpu_ms_per_call"] = round(first["cpu_s"] / calls * 1000, 4)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return {"changed": first, "unchanged": rounds[1], "peak_rss_mb": round(peak_kb / 1024, 1)}


def measure_verify(n: int, depth: int, tasks: int = 8, miners: int = 16) -> dict:
    """What verifying honest matrix-chain/2 answers costs the validator: each answer is cut to its
    sampled rows on arrival, then each task's claims are verified in one batched pass."""
    import numpy as np

    from subnet.challenges.counter_rng import numpy_matrix
    from subnet.challenges.matrix_chain import MatrixChain, layer_scale

    challenge = MatrixChain(n=n, depth=depth)
    receive = batch = 0.0
    for task in challenge.make_tasks(b"verify-bench", tasks):
        claims = []
        for i in range(miners):
            payload = challenge.payload(task, f"miner-{i}")
            y = numpy_matrix(bytes.fromhex(payload["miner_key"]), "X", n)
            for layer in range(1, depth + 1):
                y = np.tanh((y @ numpy_matrix(bytes.fromhex(payload["task_key"]), f"W{layer}", n)) * layer_scale(n))
            answer = {"row_sums": y.sum(axis=1).tolist()}
            t0 = time.perf_counter()
            claims.append(challenge.receive(task, f"miner-{i}", answer))
            receive += time.perf_counter() - t0
        t0 = time.perf_counter()
        assert all(v.ok for v in challenge.verify(task, claims))
        batch += time.perf_counter() - t0
    return {"batch_ms": round(batch / tasks * 1000, 3), "receive_ms": round(receive / (tasks * miners) * 1000, 4),
            "miners": miners}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--miners", type=int, default=64)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--per-miner", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.05, help="stand-in Actor latency, seconds")
    parser.add_argument("--n", type=int, default=256, help="matrix-chain size for the verify cost line")
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--transport", choices=["memory", "http", "both"], default="both")
    parser.add_argument("--no-service", dest="service", action="store_false",
                        help="skip the two full validator rounds (changed, then unchanged images)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    results = {}
    if args.transport in ("memory", "both"):
        results["memory"] = measure(StandInRuntime(args.latency), args)
    if args.transport in ("http", "both"):
        port = _free_port()
        server = multiprocessing.Process(target=serve_http, args=(port, args.latency), daemon=True)
        server.start()
        try:
            _wait_for(port)
            results["http"] = measure(HttpStandInRuntime(f"http://127.0.0.1:{port}"), args)
        finally:
            server.terminate()
            server.join()
    if args.service:
        results["service"] = measure_service(args)
    results["verify"] = measure_verify(args.n, args.depth)
    setup = {k: getattr(args, k) for k in ("miners", "tasks", "concurrency", "per_miner", "latency", "n", "depth")}
    if args.json:
        print(json.dumps({"setup": setup, "results": results}))
        return
    print(f"{args.miners} miners × {args.tasks} tasks, C={args.concurrency}, per-miner={args.per_miner}, latency={args.latency * 1000:g} ms")
    verify = results.pop("verify")
    service = results.pop("service", None)
    for name, r in results.items():
        print(f"  {name:6} wall {r['wall_s']:.3f}s  ideal {r['ideal_s']:.3f}s  efficiency {r['efficiency']:.3f}"
              f"  overhead {r['overhead_ms_per_call']:.3f} ms/call  (start-up {r['start_ms_per_actor']:.1f} ms/actor)")
    if service:
        changed, unchanged = service["changed"], service["unchanged"]
        print(f"  round, every image new:  wall {changed['wall_s']:.3f}s  efficiency {changed['efficiency']:.3f}"
              f"  CPU {changed['cpu_ms_per_call']:.3f} ms/call  Actors started {changed['actors_started']}")
        print(f"  round, no image changed: wall {unchanged['wall_s']:.3f}s  CPU {unchanged['cpu_s']:.3f}s"
              f"  Actors started {unchanged['actors_started']}  cached {unchanged['cached']}  weights {unchanged['weights']}")
        print(f"  peak RSS {service['peak_rss_mb']:.1f} MB")
    print(f"  matrix-chain verify (n={args.n}, depth={args.depth}): {verify['miners']} miners' answers of a task in one"
          f" batched pass {verify['batch_ms']:.2f} ms, plus {verify['receive_ms']:.3f} ms per answer on arrival"
          " (scripts/bench_challenge.py: the production size)")


if __name__ == "__main__":
    main()
