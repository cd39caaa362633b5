"""A loopback Vast.ai twin speaking vast-python's protocol (vastai 1.9.1), so our `VastClient` (or
any client of the real API) talks to it. Each route names the function of vast-python it answers:

  POST   /api/v0/bundles/                  `vastai/api/offers.py` search_offers  → {"offers": [...]}
  PUT    /api/v0/asks/{offer}/             `vastai/api/instances.py` create_instance_from_payload
                                           → {"success": true, "new_contract": id} (`data/instance.py`)
  GET    /api/v0/instances/{id}/?owner=me  show_instance → {"instances": row | null}
  GET    /api/v1/instances/                show_instances_v1 (paged: limit, after_token → next_token)
  DELETE /api/v0/instances/{id}/           destroy_instance → {"success": true}
  PUT    /api/v0/instances/bid_price/{id}/ change_bid {"client_id": "me", "price"}
  GET    /api/v0/users/current             `vastai/api/billing.py` show_user (`credit`)

Auth is `Authorization: Bearer <key>` (`vastai/api/client.py` _build_headers). Errors are
`{"success": false, "error": <code>, "msg": <text>}` (the client reads `error` and `msg`:
`vastai/async_/client.py` create_instance, `vastai/cli/main.py`); the codes other than
`search_quota_exceeded` (`client.py` is_search_quota_exceeded) are not public: ours are descriptive.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

Answer = tuple[int, Any]

# (method, path pattern, endpoint name for the rate limit, handler attribute on VastTwin)
ROUTES: list[tuple[str, str, str, str]] = [
    ("POST", r"/api/v0/bundles/?", "POST /bundles/", "_search"),
    ("PUT", r"/api/v0/asks/(\d+)/?", "PUT /asks/", "_create"),
    ("PUT", r"/api/v0/instances/bid_price/(\d+)/?", "PUT /instances/bid_price/", "_change_bid"),
    ("GET", r"/api/v0/instances/(\d+)/?", "GET /instances/{id}/", "_show"),
    ("DELETE", r"/api/v0/instances/(\d+)/?", "DELETE /instances/", "_destroy"),
    ("GET", r"/api/v1/instances/?", "GET /api/v1/instances/", "_list"),
    ("GET", r"/api/v0/users/current/?", "GET /users/current", "_user"),
]


def error(status: int, code: str, msg: str) -> Answer:
    return status, {"success": False, "error": code, "msg": msg}


def handler_for(twin: Any) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "vast-twin/1"
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            pass

        def _serve(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw) if raw else {}
            except ValueError:
                return self._send(*error(400, "invalid_json", "request body is not JSON"))
            self._send(*twin.answer(self.command, url.path, query, body, self.headers.get("Authorization") or ""))

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def _send(self, status: int, payload: Any) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def route(method: str, path: str) -> tuple[str, str, tuple[str, ...]] | None:
    """(endpoint, handler name, path groups) for a request, or None."""
    for want, pattern, endpoint, name in ROUTES:
        match = re.fullmatch(pattern, path)
        if match and want == method:
            return endpoint, name, match.groups()
    return None


def run_in_thread(target: Callable[[], None], name: str) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True, name=name)
    thread.start()
    return thread
