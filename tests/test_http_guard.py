"""The response cap and fault mapping, against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from subnet.util import aio
from subnet.protocol import FaultKind, MinerFault
from subnet.runtime.affinetes_session import AffinetesSession


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("content-length", 0))
        call = json.loads(self.rfile.read(length))
        kind = call["kwargs"].get("kind")
        if kind == "chunked_huge":
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(64):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        status, body = {
            "ok": (200, {"status": "success", "result": {"row_sums": [1.0]}}),
            "declared_huge": (200, {"status": "success", "result": "y" * 300_000}),
            "missing": (404, {"detail": "Method not found: evaluate"}),
            "crash": (500, {"detail": "ZeroDivisionError: division by zero\nTraceback ..."}),
            "not_json": (200, None),
        }[kind]
        payload = b"<html>" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def server_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def call(url: str, kind: str):
    async def go():
        session = AffinetesSession.for_url(url, max_response_bytes=100_000)
        try:
            return await session.call("evaluate", {"kind": kind}, timeout=10)
        finally:
            await session.close()

    return aio.run(go())


def fault_of(url: str, kind: str) -> MinerFault:
    with pytest.raises(MinerFault) as info:
        call(url, kind)
    return info.value


def test_small_answers_pass_through(server_url):
    assert call(server_url, "ok") == {"row_sums": [1.0]}


@pytest.mark.parametrize("kind", ["declared_huge", "chunked_huge"])
def test_bodies_over_the_cap_are_refused(server_url, kind):
    fault = fault_of(server_url, kind)
    assert fault.kind is FaultKind.OVERSIZED and "100000" in fault.detail


def test_status_codes_map_to_named_faults(server_url):
    missing = fault_of(server_url, "missing")
    assert missing.kind is FaultKind.NO_METHOD and "Method not found" in missing.detail
    crash = fault_of(server_url, "crash")
    assert crash.kind is FaultKind.ERROR and crash.detail == "HTTP 500: ZeroDivisionError: division by zero"
    assert fault_of(server_url, "not_json").kind is FaultKind.BAD_OUTPUT


def test_a_dead_server_is_unreachable():
    fault = fault_of("http://127.0.0.1:9", "ok")
    assert fault.kind is FaultKind.UNREACHABLE
