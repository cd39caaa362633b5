"""The OpenAI-compatible HTTP surface: POST /v1/chat/completions and GET /v1/models.

Refusals (OpenAI's error shape, `x-should-retry: false`): 401 bad_token / round_closed,
402 no_task / budget, 403 model_not_allowed, 400 bad requests, 413 too large, 503 state file trouble.
"""

from __future__ import annotations

import json
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from subnet.gateway.budget import Refusal
from subnet.gateway.metering import Metering
from subnet.gateway.pricing import prompt_token_bound
from subnet.gateway.relay import Upstream, forward_json, forward_stream, refusal
from subnet.state.db import StateError

log = logging.getLogger(__name__)
CHAT_PATH = "/v1/chat/completions"
MAX_BODY_BYTES = 8 << 20  # a request body past this is refused unread (413), not held in memory


class BadRequest(Exception):
    pass


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _max_tokens(payload: dict) -> tuple[str, int | None]:
    """(the field the client used, its value); the newer field wins as in the API reference."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = payload.get(name)
        if value is not None:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise BadRequest(f"{name} must be a positive integer")
            return name, value
    return "max_tokens", None


def _parse(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadRequest("the request body is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
        raise BadRequest("the request body needs a `messages` list")
    if payload.get("n", 1) != 1:
        raise BadRequest("only n=1 is served (each choice would be another completion to pay for)")
    return payload


async def _read_capped(request: Request) -> bytes | None:
    if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
        return None
    parts, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > MAX_BODY_BYTES:
            return None
        parts.append(part)
    return b"".join(parts)


class GatewayApp:
    def __init__(self, meter: Metering, upstream: Upstream, grants, models: dict[str, str]) -> None:
        self.meter, self.upstream, self.grants, self.models = meter, upstream, grants, models
        self.app = Starlette(routes=[Route(CHAT_PATH, self.chat, methods=["POST"]),
                                     Route("/v1/models", self.list_models, methods=["GET"])])

    async def __call__(self, scope, receive, send) -> None:
        # The hot route straight to its handler; the rest (models, 404, 405) through Starlette's router.
        if scope["type"] == "http" and scope["path"] == CHAT_PATH and scope["method"] == "POST":
            response = await self.chat(Request(scope, receive))
            await response(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def refuse(self, status: int, reason: str, message: str) -> Response:
        self.meter.metrics.refusals.labels(reason).inc()
        return refusal(status, reason, message)

    async def list_models(self, request: Request) -> Response:
        if isinstance(self.grants.check(_bearer(request)), str):
            return self.refuse(401, "bad_token", "invalid or expired LLM token")
        # Only the allowlisted public names: the upstream's own catalogue and names stay private.
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "subnet"} for name in self.models]
        return JSONResponse({"object": "list", "data": data})

    async def chat(self, request: Request) -> Response:
        grant = self.grants.check(_bearer(request))
        if isinstance(grant, str):
            return self.refuse(401, grant, "invalid or expired LLM token" if grant == "bad_token"
                               else "this LLM token's round has ended")
        body = await _read_capped(request)
        if body is None:
            return self.refuse(413, "too_large", f"the request body is over {MAX_BODY_BYTES >> 20} MiB")
        try:
            payload = _parse(body)
            field, requested = _max_tokens(payload)
        except BadRequest as exc:
            return self.refuse(400, "bad_request", str(exc))
        model = payload.get("model")
        if model not in self.models:
            return self.refuse(403, "model_not_allowed", f"model {str(model)[:80]!r} is not served here; "
                               f"allowed: {', '.join(self.models)}")
        task_index = self.meter.open_task(grant)
        if task_index is None:
            return self.refuse(402, "no_task", "no task of this miner is running: calls are metered to a task")
        bound = prompt_token_bound(len(body), len(payload["messages"]))
        try:
            call = await self.meter.reserve(grant, task_index, model, bound, requested)
        except StateError as exc:
            log.error("LLM call refused: %s", exc)
            return self.refuse(503, "state_error", "the gateway cannot write its usage records")
        if isinstance(call, Refusal):
            return self.refuse(402, call.reason, call.message)
        payload["model"] = self.models[model]
        payload[field] = call.plan.max_tokens
        stream = payload.get("stream") is True
        if not stream:
            return await forward_json(self.meter, self.upstream, call, json.dumps(payload).encode(),
                                      request.receive)
        options = payload.get("stream_options") if isinstance(payload.get("stream_options"), dict) else {}
        want_usage = options.get("include_usage") is True
        # Forced: usage arrives only when asked for (API reference, stream_options.include_usage).
        payload["stream_options"] = {**options, "include_usage": True}
        return await forward_stream(self.meter, self.upstream, call, json.dumps(payload).encode(), want_usage)
