"""A local OpenAI-compatible upstream (the LLM gateway's twin of Chutes): real protocol, canned "models".

Each model is a `Responder` (chat messages -> the assistant's text), deterministic, and says what it
is in its name: the default `twin/prose-ledger-oracle` answers the prose-ledger challenge exactly
(`subnet.challenges.prose_ledger.oracle_reply`). Protocol behaviours and where they come from:

- POST /v1/chat/completions, JSON answer `chat.completion` with `usage` (openai-python:
  src/openai/types/chat/chat_completion.py, `usage: Optional[CompletionUsage]`).
- `stream: true`: server-sent events, one `data: {chat.completion.chunk}` per token, ended by
  `data: [DONE]` (openai-python: src/openai/_streaming.py, `Stream.__stream__`:
  `if sse.data.startswith("[DONE]"): break`).
- the usage chunk ONLY with `stream_options.include_usage`, streamed last before [DONE], with
  `choices: []`, and every other chunk then carries `"usage": null` (openai-python:
  src/openai/types/chat/chat_completion_stream_options_param.py, `include_usage` docstring).
- `max_tokens` / `max_completion_tokens` stop the answer with `finish_reason: "length"` (openai-python:
  src/openai/types/chat/chat_completion_chunk.py, `finish_reason` docstring) — unless the test knob
  `ignore_max_tokens` makes this twin a misbehaving upstream.
- errors: `{"error": {"message", "type", "param", "code"}}`, read by openai-python as
  `body.get("error", body)` (src/openai/_client.py, `_make_status_error`); 401 for a wrong key,
  404 `model_not_found` for an unknown model.
- 429 with `Retry-After` (seconds) when `rate_limit_next(n, retry_after)` is armed; the SDK honours
  it (src/openai/_base_client.py, `_parse_retry_after_header`, `_should_retry`).
- GET /v1/models in Chutes' shape: `pricing.prompt/completion` numbers in USD per 1M tokens and
  `price.input/output.usd` (snapshot of https://llm.chutes.ai/v1/models in
  Veightor/chutes-agent-toolkit: data/chutes-models.json).
Test knobs: `token_delay_s`, `rate_limit_next`, `ignore_max_tokens`; counters `open_streams`,
`cancelled_streams`, `completed_streams`, `most_open_streams`, `cancelled_calls` (non-streaming);
`requests` keeps each request's headers and JSON body.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from typing import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from subnet.gateway.server import ThreadedServer

Responder = Callable[[list[dict]], str]
ORACLE_MODEL = "twin/prose-ledger-oracle"
DEFAULT_PRICE = (0.10, 0.40)  # USD per 1M tokens (prompt, completion): a mid-size model's order
_TOKEN = re.compile(r"\s*\S+|\s+")


def oracle_responder(messages: list[dict]) -> str:
    try:
        from subnet.challenges.prose_ledger import oracle_reply
    except ImportError as exc:
        raise RuntimeError(f"{ORACLE_MODEL} needs subnet.challenges.prose_ledger.oracle_reply ({exc})") from None
    return oracle_reply(messages)


def tokens_of_text(text: str) -> list[str]:
    """The twin's tokenizer: a word with its leading space is one token (every token >= 1 byte)."""
    return _TOKEN.findall(text)


def _prompt_tokens(messages: list[dict]) -> int:
    words = sum(len(tokens_of_text(m.get("content") if isinstance(m.get("content"), str) else
                                   json.dumps(m.get("content")))) for m in messages if isinstance(m, dict))
    return words + 4 * len(messages) + 2  # the chat template's markers


def _error(status: int, message: str, kind: str, code: str | None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}},
                        status_code=status, headers=headers)


class LlmUpstreamTwin:
    def __init__(self, models: dict[str, Responder] | None = None,
                 prices: dict[str, tuple[float, float]] | None = None, port: int = 0,
                 api_key: str | None = None) -> None:
        self.models = dict(models) if models is not None else {ORACLE_MODEL: oracle_responder}
        self.prices = {name: (prices or {}).get(name, DEFAULT_PRICE) for name in self.models}
        self.api_key = api_key  # when set, requests must carry it (as Chutes requires its key)
        self.token_delay_s = 0.0
        self.ignore_max_tokens = False
        self.open_streams = self.cancelled_streams = self.completed_streams = 0
        self.cancelled_calls = 0  # non-streaming calls whose client left before the answer
        self.most_open_streams = 0  # the high-water mark of open_streams
        self.requests: list[tuple[dict, dict]] = []
        self._lock = threading.Lock()
        self._rate_limited, self._retry_after = 0, "1"
        app = Starlette(routes=[Route("/v1/chat/completions", self._chat, methods=["POST"]),
                                Route("/v1/models", self._models, methods=["GET"])])
        self._server = ThreadedServer(app, "127.0.0.1", port, name="llm-upstream-twin")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}/v1"

    def start(self) -> "LlmUpstreamTwin":
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def rate_limit_next(self, n: int, retry_after: float | str = 1) -> None:
        with self._lock:
            self._rate_limited, self._retry_after = n, str(retry_after)

    def _take_rate_limit(self) -> str | None:
        with self._lock:
            if self._rate_limited <= 0:
                return None
            self._rate_limited -= 1
            return self._retry_after

    async def _models(self, request: Request) -> Response:
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "twin",
                 "pricing": {"prompt": p, "completion": c},
                 "price": {"input": {"usd": p}, "output": {"usd": c}}}
                for name, (p, c) in self.prices.items()]
        return JSONResponse({"object": "list", "data": data})

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append((dict(request.headers), body))
        if self.api_key is not None and request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Invalid API key", "invalid_request_error", "invalid_api_key")
        retry_after = self._take_rate_limit()
        if retry_after is not None:
            return _error(429, "Rate limit reached; retry later", "rate_limit_error", "rate_limit_exceeded",
                          {"retry-after": retry_after})
        model = body.get("model")
        if model not in self.models:
            return _error(404, f"The model `{model}` does not exist", "invalid_request_error", "model_not_found")
        messages = body.get("messages") or []
        tokens = tokens_of_text(self.models[model](messages))
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        finish = "stop"
        if limit is not None and len(tokens) > limit and not self.ignore_max_tokens:
            tokens, finish = tokens[:limit], "length"
        usage = {"prompt_tokens": _prompt_tokens(messages), "completion_tokens": len(tokens),
                 "total_tokens": _prompt_tokens(messages) + len(tokens)}
        if body.get("stream"):
            with_usage = (body.get("stream_options") or {}).get("include_usage") is True
            return StreamingResponse(self._stream(model, tokens, finish, usage if with_usage else None),
                                     media_type="text/event-stream")
        if not await self._generate_unless_left(request, self.token_delay_s * len(tokens)):
            return Response(status_code=499)  # nobody to answer
        return JSONResponse({
            "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(tokens)},
                                         "finish_reason": finish, "logprobs": None}], "usage": usage})

    async def _generate_unless_left(self, request: Request, seconds: float) -> bool:
        """Take `seconds` to "generate", unless the client leaves first (ASGI `http.disconnect`)."""
        async def left() -> None:
            while (await request.receive())["type"] != "http.disconnect":
                pass
        watcher = asyncio.ensure_future(left())
        done, _ = await asyncio.wait({watcher}, timeout=seconds)
        watcher.cancel()
        if done:
            self.cancelled_calls += 1
        return not done

    async def _stream(self, model: str, tokens: list[str], finish: str, usage: dict | None):
        base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
                "created": int(time.time()), "model": model}
        if usage is not None:
            base["usage"] = None  # "All other chunks will also include a usage field, but with a null value"

        def chunk(delta: dict, reason: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}
            return b"data: " + json.dumps({**base, "choices": [choice]}).encode() + b"\n\n"

        self.open_streams += 1
        self.most_open_streams = max(self.most_open_streams, self.open_streams)
        done = False
        try:
            yield chunk({"role": "assistant", "content": ""})
            for token in tokens:
                if self.token_delay_s:
                    await asyncio.sleep(self.token_delay_s)
                yield chunk({"content": token})
            yield chunk({}, finish)
            if usage is not None:
                yield b"data: " + json.dumps({**base, "choices": [], "usage": usage}).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"
            done = True
        finally:
            self.open_streams -= 1
            if done:
                self.completed_streams += 1
            else:
                self.cancelled_streams += 1
