"""Server-sent events as the OpenAI chat stream frames them (pure).

openai-python reads the stream with its SSE decoder (src/openai/_streaming.py, `SSEDecoder`):
events are separated by a blank line, a `data:` line carries one JSON chunk, `data: [DONE]` ends
the stream (`__stream__`: `if sse.data.startswith("[DONE]"): break`), and a chunk whose JSON has an
`error` key is raised to the caller as `openai.APIError` (`__stream__`: `if ... data.get("error")`).
The gateway relays event bytes as they came and parses JSON only for the usage chunk.
"""

from __future__ import annotations

import json
import re

DONE = b"[DONE]"
# The usage chunk carries an object; ordinary chunks carry `"usage": null` or no usage at all.
_USAGE_OBJECT = re.compile(rb'"usage"\s*:\s*\{')


class EventSplitter:
    """Bytes as they arrive -> whole events (without their blank-line terminator)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        if b"\r" in self._buffer:
            self._buffer = self._buffer.replace(b"\r\n", b"\n")
        events = self._buffer.split(b"\n\n")
        self._buffer = events.pop()
        return [e for e in events if e.strip()]


def event_data(event: bytes) -> bytes:
    """The event's data (its `data:` lines joined by newlines, as the SSE spec says); b"" if none."""
    lines = [line[5:].removeprefix(b" ") for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines)


def usage_of(data: bytes) -> tuple[dict | None, bool]:
    """(the chunk's usage object or None, whether the chunk is the usage-only chunk with `choices: []`)."""
    if not _USAGE_OBJECT.search(data):
        return None, False
    try:
        chunk = json.loads(data)
    except ValueError:
        return None, False
    usage = chunk.get("usage") if isinstance(chunk, dict) else None
    if not isinstance(usage, dict):
        return None, False
    return usage, chunk.get("choices") == []


def tokens_of(usage: dict | None) -> tuple[int, int] | None:
    """(prompt_tokens, completion_tokens) from an OpenAI `usage` object, or None when it is not one."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (prompt, completion)):
        return None
    return prompt, completion


def error_event(message: str, code: str, kind: str = "api_error") -> bytes:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def error_body(message: str, code: str, kind: str) -> dict:
    """OpenAI's error shape; openai-python reads `body["error"]` (src/openai/_client.py, `_make_status_error`)."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}
