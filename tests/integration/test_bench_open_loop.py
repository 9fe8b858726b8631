"""The benchmark's open loop counts a stall against every command scheduled during it
(no coordinated omission), where a closed loop records it once. Checked against a local
one-thread HTTP server that stalls once for half a second."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from bench.load import CaseSupply, closed_loop, open_loop

STALL_SECONDS = 0.5


class StallingServer(HTTPServer):
    """Answers like the dispute service (201 with an id to an opening, 200 otherwise),
    one request at a time; the 20th request takes STALL_SECONDS."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each answer waits 40 ms for a delayed ACK
    server: StallingServer

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests += 1
        if self.server.requests == 20:
            time.sleep(STALL_SECONDS)
        opening = self.path == "/v1/disputes"
        body = json.dumps({"id": f"d{self.server.requests}"} if opening else {}).encode()
        self.send_response(201 if opening else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = StallingServer()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def supply() -> CaseSupply:
    return CaseSupply([(f"o{n}", "b", "s") for n in range(1000)])


def no_headers(role: str, who: str) -> dict[str, str]:
    return {}


def test_the_open_loop_charges_a_stall_to_every_command_scheduled_during_it(
    server: str,
) -> None:
    # 100 commands/s for 2 s, two senders. About 50 commands are scheduled during the
    # half-second stall; the one-thread server answers none of them until it ends, so
    # each is late by up to half a second *from its scheduled time*. Timed from when it
    # was sent, only the two in flight would be slow, 1% of the samples.
    result = open_loop(server, no_headers, supply(), 100, 2.0, senders=2, warmup=0)
    assert result["errors"] == 0
    assert 180 <= result["count"] <= 220
    assert result["p90_ms"] >= STALL_SECONDS * 1000 / 4, result
    assert result["p50_ms"] < STALL_SECONDS * 1000 / 4, result


def test_a_closed_loop_records_the_same_stall_once(server: str) -> None:
    # One client: it waits out the stall and sends nothing meanwhile, so the stall is
    # one slow sample among hundreds: it shows in the maximum, not in p99.
    result = closed_loop(server, no_headers, supply(), 1, 1.5, warmup=0)
    assert result["errors"] == 0
    assert result["count"] > 200, result
    assert result["max_ms"] >= STALL_SECONDS * 1000 * 0.9, result
    assert result["p99_ms"] < STALL_SECONDS * 1000 / 4, result
