"""Serve an env folder's Actor with affinetes' own HTTP server, outside a container.

The in-image server (`affinetes.templates.http_server`) hard-codes `/app/env.py`; here the same
FastAPI app is served by uvicorn with the env loaded by `subnet.runtime.env_loader` first, the
loader every Actor image uses too, and behind the same bearer check when SUBNET_ACTOR_TOKEN is set: the env folder is a package root, and a failure to load ends
the process with one line naming the env's own exception and line. Usage:

    python -m subnet.runtime.actor_host --env DIR --port PORT
"""

from __future__ import annotations

import argparse
from pathlib import Path

from subnet.protocol import actor_auth
from subnet.runtime import env_loader


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", required=True, type=Path, help="env folder holding env.py")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args(argv)

    token = actor_auth.take_token()  # before env.py runs: the miner's code never sees it
    module = env_loader.load_or_exit(str(args.env.resolve() / "env.py"))

    import uvicorn
    from affinetes.templates import http_server

    env_loader.install(http_server, module)
    uvicorn.run(actor_auth.protect(http_server.app, token), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
