"""The per-instance bearer token an Actor's server checks when it runs on a public address.

A Vast.ai instance maps the Actor's port to a public port on the host's public IP: anyone on the
internet can reach it. The validator makes a fresh token per instance, passes it in the instance's
environment as SUBNET_ACTOR_TOKEN, and sends `Authorization: Bearer <token>` on every call; the
server answers 401 to anything else, compared in constant time. Without the variable the server is
open, as it always was: the process and Docker runtimes reach their Actors on loopback or a private
bridge only.

Standard library only: this file's source is also copied into every Actor image's `serve.py`
(`subnet.miner.wrapper`), so the image and the process runtime guard their servers with the same code.
"""

import hmac
import os
import secrets

ACTOR_TOKEN_ENV = "SUBNET_ACTOR_TOKEN"
_UNAUTHORIZED = b'{"detail":"missing or invalid bearer token"}'


def new_token():
    """A fresh token: 32 random bytes, URL-safe (fits a header and an env value unquoted)."""
    return secrets.token_urlsafe(32)


def bearer_header(token):
    """The header a caller sends with every request to an Actor guarded by `token`."""
    return {"Authorization": f"Bearer {token}"}


def bearer_ok(header, token):
    """Whether an Authorization header value carries `token`, compared in constant time.

    The scheme is case-insensitive (RFC 7235 section 2.1); the comparison runs over bytes, so a
    non-ASCII header is just a wrong one."""
    if not token or not header:
        return False
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    scheme, _, given = header.strip().partition(" ")
    ok_scheme = scheme.lower() == "bearer"
    same = hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8"))
    return ok_scheme and same


def take_token(environ=None):
    """Read the token and remove it from the environment, so the miner's code never sees it.

    Returns "" when the variable is unset or blank (the server then stays open)."""
    environ = os.environ if environ is None else environ
    return (environ.pop(ACTOR_TOKEN_ENV, "") or "").strip()


def protect(app, token):
    """`app` (an ASGI application) behind the bearer check; `app` itself when `token` is empty.

    Every HTTP request is checked, /health included: a stranger learns nothing, not even liveness."""
    if not token:
        return app

    async def guarded(scope, receive, send):
        if scope.get("type") in ("http", "websocket"):
            header = b""
            for name, value in scope.get("headers") or ():
                if name.lower() == b"authorization":
                    header = value
            if not bearer_ok(header, token):
                await _refuse(scope, send)
                return
        await app(scope, receive, send)

    return guarded


async def _refuse(scope, send):
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})  # policy violation
        return
    await send({
        "type": "http.response.start",
        "status": 401,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(_UNAUTHORIZED)).encode()),
            (b"www-authenticate", b"Bearer"),
        ],
    })
    await send({"type": "http.response.body", "body": _UNAUTHORIZED})
