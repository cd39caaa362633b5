"""The Actor server's bearer check (subnet.protocol.actor_auth): with SUBNET_ACTOR_TOKEN set, every
request without `Authorization: Bearer <token>` gets 401; without the variable the server is open.

The server here is the real one (affinetes' template under uvicorn, started by
`python -m subnet.runtime.actor_host`), called over loopback with httpx and through affinetes' URL
executor. The built image runs the same guard (test_actor_auth_docker.py).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from envs_factory import make_env
from subnet.miner.wrapper import SERVE_PY
from subnet.protocol import actor_auth
from subnet.protocol.actor_auth import ACTOR_TOKEN_ENV, bearer_header, bearer_ok, new_token
from subnet.runtime.affinetes_session import AffinetesSession
from subnet.runtime.process import free_port

PROBE_METHOD = """
    def environment(self, **_):
        import os
        return {"keys": sorted(os.environ)}
"""


def test_tokens_are_fresh_and_long():
    tokens = {new_token() for _ in range(50)}
    assert len(tokens) == 50 and all(len(t) >= 43 for t in tokens)


@pytest.mark.parametrize("header, ok", [
    ("Bearer {t}", True), ("bearer {t}", True), ("BEARER  {t} ", True),
    ("", False), ("Bearer", False), ("Bearer ", False), ("Basic {t}", False), ("Bearer {t}x", False),
    ("Bearer x{t}", False), ("{t}", False), ("Bearer wrong", False), ("Bearer {t} {t}", False),
    ("Bearer \u00e9{t}", False),
])
def test_bearer_check(header, ok):
    token = new_token()
    assert bearer_ok(header.format(t=token), token) is ok
    assert bearer_ok(header.format(t=token).encode("utf-8"), token) is ok


def test_no_token_means_no_access():
    assert not bearer_ok("Bearer ", "")
    assert not bearer_ok("Bearer x", "")


def test_take_token_removes_it_from_the_environment():
    environ = {ACTOR_TOKEN_ENV: " abc ", "PATH": "/bin"}
    assert actor_auth.take_token(environ) == "abc"
    assert environ == {"PATH": "/bin"}
    assert actor_auth.take_token({}) == ""


def test_the_image_server_runs_the_same_guard():
    """serve.py carries actor_auth's source verbatim and wraps the app with it."""
    import inspect

    assert inspect.getsource(actor_auth) in SERVE_PY
    assert "token = take_token()" in SERVE_PY
    assert SERVE_PY.index("token = take_token()") < SERVE_PY.index('load_or_exit("/app/env.py")')
    assert "uvicorn.run(protect(http_server.app, token)" in SERVE_PY
    compile(SERVE_PY, "serve.py", "exec")


def _serve(env_dir: Path, token: str | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {k: os.environ[k] for k in ("PATH", "LANG") if k in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    if token is not None:
        env[ACTOR_TOKEN_ENV] = token
    proc = subprocess.Popen([sys.executable, "-m", "subnet.runtime.actor_host", "--env", str(env_dir),
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    headers = bearer_header(token) if token else {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        try:
            if httpx.get(f"{url}/health", headers=headers, timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the Actor server never answered /health")


@pytest.fixture
def probe_env(tmp_path):
    """The honest Actor plus a method that reports which environment variables it can read."""
    folder = make_env(tmp_path, "honest")
    source = (folder / "env.py").read_text()
    assert "class Actor:" in source
    (folder / "env.py").write_text(source.replace("class Actor:", "class Actor:" + PROBE_METHOD, 1))
    return folder


@pytest.fixture
def guarded(probe_env):
    token = new_token()
    proc, url = _serve(probe_env, token)
    yield url, token
    proc.terminate()
    proc.wait(10)


def test_without_the_right_token_every_path_is_401(guarded):
    url, token = guarded
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {token}"},
                    {"Authorization": f"Bearer {new_token()}"}, {"X-Token": token}):
        for method, path in (("GET", "/health"), ("GET", "/methods"), ("POST", "/call"), ("POST", "/evaluate")):
            reply = httpx.request(method, url + path, headers=headers, json={"method": "evaluate"}, timeout=10)
            assert reply.status_code == 401, (headers, path, reply.text)
            assert reply.json() == {"detail": "missing or invalid bearer token"}
            assert reply.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{url}/health", params={"token": token}, timeout=10).status_code == 401


def test_with_the_token_the_actor_answers_and_never_sees_it(guarded):
    url, token = guarded
    reply = httpx.post(f"{url}/call", headers=bearer_header(token), timeout=30,
                       json={"method": "environment", "args": [], "kwargs": {}})
    assert reply.status_code == 200, reply.text
    keys = reply.json()["result"]["keys"]
    assert ACTOR_TOKEN_ENV not in keys and "PATH" in keys


def test_affinetes_url_executor_calls_with_the_header(guarded):
    url, token = guarded

    async def run():
        session = AffinetesSession.for_url(url, 1 << 20).add_headers(bearer_header(token))
        refused = AffinetesSession.for_url(url, 1 << 20)
        try:
            result = await session.call("evaluate", {"task_key": "ab" * 32, "miner_key": "cd" * 32,
                                                     "n": 16, "depth": 2}, timeout=30)
            with pytest.raises(Exception) as caught:
                await refused.call("evaluate", {"n": 16, "depth": 2}, timeout=30)
            return result, caught.value
        finally:
            await session.close()
            await refused.close()

    result, fault = asyncio.run(run())
    assert len(result["row_sums"]) == 16
    assert "401" in str(fault)


def test_without_the_variable_the_server_is_open_as_before(probe_env):
    proc, url = _serve(probe_env, None)
    try:
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        reply = httpx.post(f"{url}/call", json={"method": "environment", "args": [], "kwargs": {}}, timeout=30)
        assert reply.status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)
