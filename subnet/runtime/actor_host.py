"""Serve an env folder's Actor with affinetes' own HTTP server, outside a container.

The in-image server (`affinetes.templates.http_server`) hard-codes `/app/env.py`; here the same
FastAPI app is served by uvicorn with only the loader pointed at another folder, so the process
runtime speaks exactly the protocol a container does. Usage:

    python -m subnet.runtime.actor_host --env DIR --port PORT
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path


def _loader_for(env_file: Path):
    def load_user_env() -> None:
        from affinetes.templates import http_server

        spec = importlib.util.spec_from_file_location("user_env", env_file)
        if spec is None or spec.loader is None:
            raise RuntimeError(f"cannot load {env_file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules["user_env"] = module
        spec.loader.exec_module(module)
        http_server.user_module = module
        http_server.user_actor = None

    return load_user_env


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env", required=True, type=Path, help="env folder holding env.py")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args(argv)

    env_dir = args.env.resolve()
    sys.path.insert(0, str(env_dir))  # env.py may import modules beside it, as in /app

    import uvicorn
    from affinetes.templates import http_server

    http_server._load_user_env = _loader_for(env_dir / "env.py")
    uvicorn.run(http_server.app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
