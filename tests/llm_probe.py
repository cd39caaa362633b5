"""A probe Actor for the LLM tests: what an env can see and reach, reported as its answer.

The probe looks for the bytes `canary-` everywhere it can read (its environment, /proc/self/environ,
every /proc/*/environ and cmdline it may open, and every file under the roots it is given) and
reports each hit with the 64 bytes after it, so a test can assert that its own random canary
(`canary-<hex>`) is nowhere among them. It then calls the gateway at OPENAI_BASE_URL with
OPENAI_API_KEY (stdlib only: the Docker image needs no package) and tries plain TCP connections
to the other addresses it is given. Stdlib only, so the image builds from the base image alone.
"""

from __future__ import annotations

import secrets
from pathlib import Path

PROBE_ENV_PY = r'''
import json, os, socket, time, urllib.error, urllib.request

MARK = b"canary" + b"-"  # split so this file itself is no hit
SKIP = ("/proc", "/sys", "/dev")


def _hits_in(data, where, hits):
    start = data.find(MARK)
    while start >= 0:
        hits.append({"where": where, "after": data[start:start + 64].decode("latin-1")})
        start = data.find(MARK, start + 1)


def _read(path, hits, limit=1 << 20):
    try:
        with open(path, "rb") as handle:
            _hits_in(handle.read(limit), path, hits)
        return 1
    except (OSError, ValueError):
        return 0


def _walk(root, hits, deadline):
    seen = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not os.path.join(folder, d).startswith(SKIP)]
        for name in files:
            path = os.path.join(folder, name)
            if time.monotonic() > deadline:
                return seen, False
            if not os.path.islink(path) and os.path.isfile(path):
                seen += _read(path, hits)
    return seen, True


def _chat(model):
    base, key = os.environ.get("OPENAI_BASE_URL"), os.environ.get("OPENAI_API_KEY")
    if not base or not key:
        return {"status": None, "error": "no OPENAI_BASE_URL/OPENAI_API_KEY"}
    body = json.dumps({"model": model, "max_tokens": 16,
                       "messages": [{"role": "user", "content": "probe: say anything"}]}).encode()
    request = urllib.request.Request(base.rstrip("/") + "/chat/completions", data=body, method="POST",
                                     headers={"authorization": "Bearer " + key, "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            return {"status": answer.status, "usage": json.loads(answer.read()).get("usage")}
    except urllib.error.HTTPError as exc:
        return {"status": exc.code, "error": exc.read()[:300].decode("latin-1")}
    except OSError as exc:
        return {"status": None, "error": type(exc).__name__ + ": " + str(exc)}


def _tcp(host, port):
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
        return "open"
    except OSError as exc:
        return type(exc).__name__


class Actor:
    def evaluate(self, model="", scan_roots=(), others=(), scan_seconds=60, **_):
        hits = []
        _hits_in("\n".join(k + "=" + v for k, v in os.environ.items()).encode(), "os.environ", hits)
        _read("/proc/self/environ", hits)
        opened = 0
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                opened += _read("/proc/%s/environ" % pid, hits) + _read("/proc/%s/cmdline" % pid, hits)
        deadline = time.monotonic() + scan_seconds
        files, finished = 0, True
        for root in scan_roots:
            seen, done = _walk(root, hits, deadline)
            files, finished = files + seen, finished and done
        return {"env": dict(os.environ), "hits": hits, "proc_files": opened, "files": files,
                "scan_finished": finished, "chat": _chat(model),
                "reach": {"%s:%s" % (h, p): _tcp(h, p) for h, p in others}}
'''


def make_probe_env(root: Path, name: str = "llm-probe") -> Path:
    env_dir = root / name
    env_dir.mkdir(parents=True)
    (env_dir / "env.py").write_text(PROBE_ENV_PY)
    (env_dir / "requirements.txt").write_text("")
    (env_dir / "Dockerfile").write_text("FROM python:3.11-slim\nWORKDIR /app\nCOPY . .\n")
    return env_dir


def new_canary() -> str:
    return "canary-" + secrets.token_hex(12)


def leaked(canary: str, *texts: str) -> list[str]:
    """Which of `texts` hold the canary (by index and a little context)."""
    return [f"#{i}: …{t[max(0, t.find(canary) - 40):t.find(canary) + 40]}…" for i, t in enumerate(texts) if canary in t]
