"""A real HTTP endpoint for webhook tests: records every request, and can be told to
fail, answer slowly, or recover."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when the request arrived
    answered: int  # the status it was answered with

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    # behaviour, consumed in this order: answer these statuses first, then be slow, then 200
    fail_with: list[int] = field(default_factory=list)
    slow_times: int = 0
    slow_seconds: float = 0.0
    location: str = ""  # sent with a 3xx answer
    body_bytes: int = 0  # the size of each answer's body
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Event = field(default_factory=threading.Event)

    def next_answer(self) -> tuple[int, float]:
        with self.lock:
            if self.fail_with:
                return self.fail_with.pop(0), 0.0
            if self.slow_times:
                self.slow_times -= 1
                return 200, self.slow_seconds
            return 200, 0.0

    def delivered(self) -> list[Received]:
        with self.lock:
            return [r for r in self.received if 200 <= r.answered < 300]

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Waits until `count` deliveries were answered 2xx; returns them."""
        deadline = time.monotonic() + timeout
        while len(got := self.delivered()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(got)} of {count} deliveries arrived in {timeout} s")
            time.sleep(0.02)
        return got


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrived = time.time()
            status, delay = state.next_answer()
            state.arrived.set()
            if delay:
                time.sleep(delay)
            headers = {k.lower(): v for k, v in self.headers.items()}
            with state.lock:
                state.received.append(Received(headers, body, arrived, status))
            try:
                self.send_response(status)
                if 300 <= status < 400 and state.location:
                    self.send_header("Location", state.location)
                self.send_header("Content-Length", str(state.body_bytes))
                self.end_headers()
                self.wfile.write(b"x" * state.body_bytes)
            except OSError:  # the deliverer gave up waiting
                pass

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
