"""The wrapper stage that turns a miner's env image into an Actor image.

affinetes' own `build_image_from_env` installs affinetes from GitHub `@main` (unreachable here and
not reproducible). This stage installs the affinetes HTTP server from exact PyPI pins instead.

Layout inside the image:
- `/opt/subnet-actor/lib`   the pinned server packages (`pip --target`, no deps resolution)
- `/opt/subnet-actor/serve.py`   starts affinetes' server template on 0.0.0.0:8000, behind the
                            bearer check of `subnet.protocol.actor_auth` when SUBNET_ACTOR_TOKEN is set
- `/app/env.py`             the miner's Actor (the template hard-codes this path); `/app` is a
                            package root, so env.py may import its sibling modules and subpackages

The server packages are appended to `sys.path` *after* the env's own site-packages, so an env
that pins its own pydantic/fastapi keeps them; the server only fills in what is missing.
"""

from __future__ import annotations

import inspect
from typing import Any, Mapping

from subnet.protocol import ACTOR_PORT, actor_auth
from subnet.runtime import env_loader

AFFINETES_VERSION = "0.2.0"
ACTOR_UID = 10001
SERVER_DIR = "/opt/subnet-actor"

# The full closure of fastapi + uvicorn (no extras), resolved together and pinned exactly; the
# wheels exist for CPython 3.10-3.13 on manylinux. affinetes is installed without its client-side
# dependencies (docker, paramiko, aiohttp, ...): the server template needs none of them.
SERVER_REQUIREMENTS = f"""\
affinetes=={AFFINETES_VERSION}
fastapi==0.115.12
starlette==0.46.2
pydantic==2.11.4
pydantic-core==2.33.2
annotated-types==0.7.0
typing-extensions==4.13.2
typing-inspection==0.4.0
anyio==4.9.0
idna==3.10
sniffio==1.3.1
exceptiongroup==1.2.2 ; python_version < "3.11"
uvicorn==0.34.2
click==8.1.8
h11==0.16.0
"""

_SERVE_HEAD = f'''\
"""Start affinetes' HTTP server template (pinned, from {SERVER_DIR}/lib) for /app/env.py."""
import os
import sys

sys.dont_write_bytecode = True  # the root filesystem is read-only at run time
if not os.access(os.environ.get("HOME") or "/", os.W_OK):
    os.environ["HOME"] = "/tmp"  # the only writable place; caches under ~ land there

LIB = "{SERVER_DIR}/lib"
TEMPLATES = LIB + "/affinetes/templates"
sys.path.append(LIB)  # after the env's own packages: the env's pins win

if "--check" in sys.argv:  # build-time smoke test: the server imports, env.py is where it must be
    sys.path.insert(0, TEMPLATES)
    import http_server  # noqa: F401  (imports fastapi/pydantic; does not load env.py)
    import uvicorn  # noqa: F401
    if not os.path.isfile("/app/env.py"):
        sys.exit("subnet: /app/env.py is missing: the env Dockerfile must `WORKDIR /app` and `COPY . .`")
    sys.exit(0)

# ---- subnet.protocol.actor_auth, verbatim: the process runtime guards its server with the same code ----
'''

_SERVE_MIDDLE = """
# ---- end of actor_auth ----
# ---- subnet.runtime.env_loader, verbatim: the process runtime loads envs with the same code ----
"""

_SERVE_TAIL = f'''
# ---- end of env_loader ----

# Taken out of the environment before env.py runs: the miner's code never sees the token.
token = take_token()

# /app first on sys.path (a package root, as for any script); a failure exits with one line.
module = load_or_exit("/app/env.py")

# Importing the template as a top-level module (not `affinetes.templates.http_server`) keeps
# affinetes' client side, and its many dependencies, out of the image.
sys.path.insert(0, TEMPLATES)
import http_server  # noqa: E402
import uvicorn  # noqa: E402

install(http_server, module)
# With SUBNET_ACTOR_TOKEN set (a public address: Vast.ai) every request needs the bearer token.
uvicorn.run(protect(http_server.app, token), host="0.0.0.0", port={ACTOR_PORT}, workers=1, log_level="warning", access_log=False)
'''

SERVE_PY = _SERVE_HEAD + inspect.getsource(actor_auth) + _SERVE_MIDDLE + inspect.getsource(env_loader) + _SERVE_TAIL


def wrapper_dockerfile(base_image_id: str, base_config: Mapping[str, Any] | None = None) -> str:
    """The wrapper stage on top of the env image `base_image_id` (a local `sha256:` image id).

    `base_config` is that image's `Config`; instructions that would not change it are left out,
    because with the classic builder every instruction costs a container commit (seconds each on
    fuse-overlayfs). Settings that could be instructions live in serve.py for the same reason.
    """
    config = base_config or {}
    user = str(config.get("User") or "")
    lines = [f"FROM {base_image_id}"]
    if user not in ("", "root", "0", "0:0"):
        lines.append("USER root")
    lines += [
        f"COPY server-requirements.txt serve.py {SERVER_DIR}/",
        f"RUN python3 -m pip install --no-cache-dir --disable-pip-version-check --no-deps --only-binary=:all: \\\n"
        f"      --target {SERVER_DIR}/lib -r {SERVER_DIR}/server-requirements.txt \\\n"
        f" && python3 {SERVER_DIR}/serve.py --check \\\n"
        f" && chmod -R a+rX {SERVER_DIR} /app",
        f'LABEL affinetes.env.type="function_based" subnet.actor.server="affinetes=={AFFINETES_VERSION}"',
    ]
    if config.get("WorkingDir") != "/app":
        lines.append("WORKDIR /app")
    if config.get("Entrypoint"):
        lines.append("ENTRYPOINT []")
    lines += [f"USER {ACTOR_UID}:{ACTOR_UID}", f'CMD ["python3", "{SERVER_DIR}/serve.py"]']
    return "\n".join(lines) + "\n"
