#!/usr/bin/env python3
"""What the LLM gateway adds to a call: latency (p50/p99) and CPU per 1,000 calls, vs the twin direct.

    python scripts/bench_gateway.py                       # 256 concurrent streams, 2,048 calls a side
    python scripts/bench_gateway.py --concurrency 1 --calls 200 --tokens 16

Three processes, as in production (the upstream is another machine; the load is the miners' Actors):
the twin upstream (subnet/twins/llm_upstream.py), the gateway (subnet/gateway, SQLite usage file in a
temporary folder, every call metered and settled), and this load generator (httpx, raw SSE, no SDK
cost on the client side). Each call is one streaming chat completion of `--tokens` tokens read to
`data: [DONE]`. Phase 1 calls the twin directly, phase 2 the same calls through the gateway.

Printed: per phase p50/p99 latency of a whole call and calls/s; then the added latency (gateway p50 -
direct p50, same for p99) and the gateway process's CPU seconds per 1,000 calls (utime+stime from
/proc, its whole process: uvicorn, the relay, aiohttp to the twin, SQLite). The target of issue 16 is an
added p50 under 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
KEY = "bench-upstream-key"
MODEL = "bench/echo"


def serve_twin(tokens: int) -> None:
    from subnet.twins.llm_upstream import LlmUpstreamTwin
    text = " ".join(f"t{i}" for i in range(tokens))
    twin = LlmUpstreamTwin({MODEL: lambda messages: text}, api_key=KEY).start()
    print(json.dumps({"url": twin.url}), flush=True)
    sys.stdin.read()  # until the parent closes our stdin
    twin.stop()


def serve_gateway(upstream: str, concurrency: int, db: str) -> None:
    from prometheus_client import CollectorRegistry
    from subnet.gateway import Gateway, GatewaySettings
    settings = GatewaySettings(_env_file=None, llm_upstream=upstream, llm_api_key=KEY, llm_models=MODEL,
                               llm_concurrency=concurrency, llm_task_budget_usd=1e6, llm_round_budget_usd=1e6)
    gw = Gateway(settings, usage_db=Path(db), registry=CollectorRegistry())
    asyncio.run(gw.start())
    grant = gw.grant(1, 0, "bench-hotkey")
    gw.begin_task(1, 0, 0)
    profile = os.environ.get("BENCH_GATEWAY_PROFILE")  # a path: cProfile of the gateway's loop thread
    if profile:
        import cProfile
        profiler = cProfile.Profile()
        gw._server.loop.call_soon_threadsafe(profiler.enable)
    print(json.dumps({"url": gw.local_url, "token": grant.token}), flush=True)
    sys.stdin.read()
    if profile:
        gw._server.loop.call_soon_threadsafe(profiler.disable)
        time.sleep(0.5)
        profiler.dump_stats(profile)
    print(json.dumps({"spent": gw.end_task(1, 0, 0)}), flush=True)
    asyncio.run(gw.stop())


def spawn(*args: str) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, cwd=ROOT)
    return proc, json.loads(proc.stdout.readline())


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def one_call(http: httpx.AsyncClient, url: str, key: str) -> float:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "count"}], "stream": True}
    start = time.perf_counter()
    async with http.stream("POST", url + "/chat/completions", json=body,
                           headers={"authorization": f"Bearer {key}"}) as resp:
        if resp.status_code != 200:
            raise RuntimeError(f"HTTP {resp.status_code}: {(await resp.aread())[:200]!r}")
        tail = b""
        async for chunk in resp.aiter_bytes():
            tail = (tail + chunk)[-64:]
        if b"[DONE]" not in tail:
            raise RuntimeError("stream ended without [DONE]")
    return time.perf_counter() - start


async def phase(url: str, key: str, calls: int, concurrency: int) -> tuple[list[float], float]:
    # One small httpx pool per 16 workers: one big pool costs CPU with the square of its size
    # (see subnet/gateway/relay.py), which would load this side, not the one measured.
    pools = [httpx.AsyncClient(limits=httpx.Limits(max_connections=16, max_keepalive_connections=16), timeout=120)
             for _ in range(-(-concurrency // 16))]
    try:
        await asyncio.gather(*(one_call(pools[i % len(pools)], url, key) for i in range(min(concurrency, 32))))
        queue = list(range(calls))
        latencies: list[float] = []

        async def worker(http: httpx.AsyncClient) -> None:
            while queue:
                queue.pop()
                latencies.append(await one_call(http, url, key))

        start = time.perf_counter()
        await asyncio.gather(*(worker(pools[i // 16]) for i in range(concurrency)))
        return latencies, time.perf_counter() - start
    finally:
        for pool in pools:
            await pool.aclose()


def pct(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--calls", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=2, help="direct/gateway phases alternated this many times")
    ap.add_argument("--tokens", type=int, default=16, help="completion tokens per call (one SSE chunk each)")
    ap.add_argument("--serve-twin", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--serve-gateway", metavar="UPSTREAM", help=argparse.SUPPRESS)
    ap.add_argument("--db", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_twin:
        return serve_twin(args.tokens)
    if args.serve_gateway:
        return serve_gateway(args.serve_gateway, args.concurrency, args.db)

    with tempfile.TemporaryDirectory() as tmp:
        twin, twin_info = spawn("--serve-twin", "--tokens", str(args.tokens))
        gateway, gw_info = spawn("--serve-gateway", twin_info["url"], "--concurrency", str(args.concurrency),
                                 "--db", str(Path(tmp) / "usage.sqlite"))
        try:
            print(f"{args.calls} streaming calls a side, {args.rounds} alternated rounds, {args.tokens} tokens, "
                  f"{args.concurrency} concurrent, "
                  f"{os.cpu_count()} CPUs")
            direct, through, direct_s, through_s, twin_cpu, gw_cpu = [], [], 0.0, 0.0, 0.0, 0.0
            per_round = args.calls // args.rounds
            for _ in range(args.rounds):  # alternated, so a neighbour's load falls on both sides
                twin0 = cpu_seconds(twin.pid)
                lat, secs = asyncio.run(phase(twin_info["url"], KEY, per_round, args.concurrency))
                direct, direct_s, twin_cpu = direct + lat, direct_s + secs, twin_cpu + cpu_seconds(twin.pid) - twin0
                gw0 = cpu_seconds(gateway.pid)
                lat, secs = asyncio.run(phase(gw_info["url"], gw_info["token"], per_round, args.concurrency))
                through, through_s, gw_cpu = through + lat, through_s + secs, gw_cpu + cpu_seconds(gateway.pid) - gw0
        finally:
            gateway.stdin.close()
            spent = json.loads(gateway.stdout.readline() or "{}").get("spent")
            twin.stdin.close()
            gateway.wait(30)
            twin.wait(30)
    for name, lat, secs in (("direct to twin", direct, direct_s), ("through gateway", through, through_s)):
        print(f"  {name:16} p50 {pct(lat, 50):8.2f} ms   p99 {pct(lat, 99):8.2f} ms   {len(lat) / secs:7.0f} calls/s")
    print(f"  added by gateway p50 {pct(through, 50) - pct(direct, 50):8.2f} ms   "
          f"p99 {pct(through, 99) - pct(direct, 99):8.2f} ms   (target: p50 < 2 ms)")
    print(f"  twin CPU         {twin_cpu / len(direct) * 1000:8.2f} s per 1,000 calls (the upstream itself, for scale)")
    print(f"  gateway CPU      {gw_cpu / len(through) * 1000:8.2f} s per 1,000 calls"
          f"   (metered ${spent:.6f} over {len(through) + args.rounds * min(args.concurrency, 32)} calls)")


if __name__ == "__main__":
    main()
