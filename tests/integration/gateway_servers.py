"""Real HTTP servers for the gateway tests: the gateway itself under uvicorn in a thread,
and a tiny recording upstream that stands where the dispute service would be.

The upstream is not a model of the dispute service: it records what reached it and
answers 200 with the request echoed, so a test can see exactly what the gateway
forwarded, or, set to be slow, that the gateway stops waiting.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI

from services.stack import free_port


@dataclass
class Received:
    method: str
    path: str
    headers: httpx.Headers  # case-insensitive, as HTTP headers are
    body: bytes


@dataclass
class Upstream:
    port: int
    received: list[Received] = field(default_factory=list)
    delay_seconds: float = 0.0
    ready_status: int = 200
    release: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path == "/readyz":
                self._send(upstream.ready_status, {"status": "ok"}, {})
                return
            upstream.received.append(
                Received(self.command, self.path, httpx.Headers(list(self.headers.items())), body)
            )
            if upstream.delay_seconds:
                upstream.release.wait(upstream.delay_seconds)
            extra = {
                "ETag": '"3"',
                "Location": f"{upstream.url}/v1/disputes/d-1",
                "X-Request-ID": self.headers.get("X-Request-ID", ""),
                "X-Internal-Detail": "never relayed",
            }
            self._send(200, {"method": self.command, "path": self.path}, extra)

        def _send(self, status: int, payload: dict[str, Any], extra: dict[str, str]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _answer

    return Handler


@contextmanager
def recording_upstream(port: int | None = None) -> Iterator[Upstream]:
    upstream = Upstream(port or free_port())
    server = ThreadingHTTPServer(("127.0.0.1", upstream.port), _handler(upstream))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        upstream.release.set()  # let a slow answer finish
        server.shutdown()
        server.server_close()
        thread.join()


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn on a free loopback port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join()
