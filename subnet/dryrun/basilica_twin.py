"""The Basilica twin as a standalone server: `python -m subnet.dryrun.basilica_twin --port 8787`.

A composition root: it hands the twin (`subnet.twins.basilica_twin`) the runtime its deployments
run on (the hardened Docker runtime, images from the local Docker store), so the twin itself never
imports a runtime. Options for production timings: `--generation srv` (the public server's
answers), `--profile production` (pulls of minutes, evictions, spot reclaims) with `--time-scale`.
"""

from __future__ import annotations

import argparse
import json
import threading

from subnet.config import Settings
from subnet.runtime.factory import make_runtime
from subnet.twins.basilica_deployments import Generation
from subnet.twins.basilica_profile import ProductionProfile
from subnet.twins.basilica_twin import BasilicaTwin
from subnet.twins.deployment_host import ActorHost


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m subnet.dryrun.basilica_twin", description="Local Basilica API twin")
    p.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    p.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    p.add_argument("--token", default="twin-token", help="bearer token the twin accepts")
    p.add_argument("--offerings", help="JSON file: a list of nodes[] entries (default: a sample catalogue)")
    p.add_argument("--balance", default="25.00")
    p.add_argument("--deployment-url", help="URL deployments report; may contain {name}")
    p.add_argument("--run-actors", choices=("docker", "off"), default="docker",
                   help="docker: each deployment's image runs as a hardened local container behind a token-checking "
                        "front (needs the image in the local Docker store); off: readiness is simulated")
    p.add_argument("--rate-limit", default="", help="REQUESTS/SECONDS per client IP or X-API-Key, e.g. 60/60 (429 beyond)")
    p.add_argument("--generation", choices=("today", "srv"), default="today",
                   help="srv: answers as the last public server gave them (no names, no container states)")
    p.add_argument("--profile", choices=("none", "production"), default="none",
                   help="production: pulls of 30-300 s, 5%% of deployments evicted or reclaimed")
    p.add_argument("--time-scale", type=float, default=1.0, help="the profile's clock runs this many times faster")
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    offerings = None
    if args.offerings:
        with open(args.offerings) as fh:
            offerings = json.load(fh)
    actor_host = ActorHost(make_runtime("docker", Settings(), allow_local=True)) if args.run_actors == "docker" else None
    rate = tuple(float(x) for x in args.rate_limit.split("/")) if args.rate_limit else None
    twin = BasilicaTwin(token=args.token, offerings=offerings, balance=args.balance,
                        deployment_url=args.deployment_url, host=args.host, port=args.port, actor_host=actor_host,
                        rate_limit=(int(rate[0]), rate[1]) if rate else None)
    twin.state.generation = Generation.named(args.generation)
    if args.profile == "production":
        twin.state.profile = ProductionProfile(time_scale=args.time_scale)
    print(f"basilica twin listening on {twin.start()} (export BASILICA_API_URL=that, BASILICA_API_TOKEN={args.token})",
          flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        twin.stop()


if __name__ == "__main__":
    main()
