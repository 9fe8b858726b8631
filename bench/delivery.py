"""Events out under load: webhook and JetStream delivery lag, and webhook throughput.

- A webhook receiver in this process (one thread per connection, answers 204 at once)
  and a JetStream ordered consumer record when each event arrives; the event's lag is
  that time minus the event's own time (`timestamp`, taken by the service just before
  the commit): from commit to the receiver's 2xx, and to the consumer's receipt.
- Lags are grouped by the closed-loop run their event was committed in (by clients).
- Throughput: subscriptions replaying the whole feed from position 0 (one, then
  `DISPUTES_WEBHOOKS_CONCURRENCY` of them) for a fixed window: deliveries per second
  one delivery process sustains, and its CPU per delivery.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.common import latency_summary

NATS_URL = "nats://127.0.0.1:4222"


def nats_available(url: str = NATS_URL) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), 2):
            return True
    except OSError:
        return False


def _event_time(body: bytes) -> tuple[float, int]:
    parsed = json.loads(body)
    stamp = datetime.fromisoformat(parsed["timestamp"].replace("Z", "+00:00")).timestamp()
    return stamp, int(parsed["data"]["position"])


class Receiver:
    """Records (path, arrival time, body) of every POST; answers 204."""

    def __init__(self) -> None:
        self.received: list[tuple[str, float, bytes]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                arrived = time.time()
                with outer.lock:
                    outer.received.append((self.path, arrived, body))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def count(self, path: str | None = None) -> int:
        with self.lock:
            return sum(1 for p, _, _ in self.received if path is None or p.startswith(path))

    def arrivals(self, path: str) -> list[tuple[float, bytes]]:
        with self.lock:
            return [(t, b) for p, t, b in self.received if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class JetStreamWatcher(threading.Thread):
    """An ordered consumer on the stream, recording (arrival time, body) of each message."""

    def __init__(self, url: str, stream: str, subjects: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stream, self.subjects = url, stream, subjects
        self.received: list[tuple[float, bytes]] = []
        self.stopping = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        asyncio.run(self._watch())

    async def _watch(self) -> None:
        import nats
        from nats.errors import TimeoutError as NatsTimeout

        nc = await nats.connect(self.url)
        try:
            js = nc.jetstream()
            try:
                await js.stream_info(self.stream)
            except Exception:
                await js.add_stream(name=self.stream, subjects=[self.subjects])
            sub = await js.subscribe(self.subjects, stream=self.stream, ordered_consumer=True)
            self.ready.set()
            while not self.stopping.is_set():
                try:
                    msg = await sub.next_msg(timeout=0.5)
                except NatsTimeout:
                    continue
                self.received.append((time.time(), msg.data))
            await js.delete_stream(self.stream)
        finally:
            await nc.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def lags(
    arrivals: list[tuple[float, bytes]], windows: list[tuple[str, float, float]]
) -> dict[str, Any]:
    """Lag summaries of the events committed within each window (label, start, end): the
    first arrival of each position only."""
    first: dict[int, tuple[float, float]] = {}
    for arrived, body in arrivals:
        stamp, position = _event_time(body)
        first.setdefault(position, (stamp, arrived))
    out: dict[str, Any] = {}
    labels = dict.fromkeys(label for label, _, _ in windows)
    for label in labels:
        spans = [(a, b) for lab, a, b in windows if lab == label]
        values = [
            arrived - stamp
            for stamp, arrived in first.values()
            if any(a <= stamp <= b for a, b in spans)
        ]
        if values:
            out[label] = {"count": len(values), **latency_summary(values)}
    return out


def reached(arrivals: list[tuple[float, bytes]], position: int) -> bool:
    """Whether the last arrival (they come in position order) is at `position` or past."""
    return bool(arrivals) and _event_time(arrivals[-1][1])[1] >= position


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def subscribe(base: str, headers: dict[str, str], url: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{base}/v1/webhooks", json={"url": url, "events": ["*"]}, headers=headers, timeout=30
    )
    answer.raise_for_status()
    result: dict[str, Any] = answer.json()
    return result


def throughput(
    base: str,
    headers: dict[str, str],
    receiver: Receiver,
    subscriptions: int,
    seconds: float,
    cpu_seconds: Callable[[], float],
) -> dict[str, Any]:
    """Deliveries per second while `subscriptions` webhooks replay the feed from 0."""
    tag = f"/replay-{subscriptions}-{time.monotonic_ns()}"
    hooks = [subscribe(base, headers, f"{receiver.url}{tag}/{n}") for n in range(subscriptions)]
    for hook in hooks:
        httpx.post(f"{base}/v1/webhooks/{hook['id']}/replay", json={"after": 0},
                   headers=headers, timeout=30).raise_for_status()  # fmt: skip
    time.sleep(1.0)  # past the start: claims taken, connections open
    count0, cpu0, t0 = receiver.count(tag), cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    count1, cpu1, t1 = receiver.count(tag), cpu_seconds(), time.monotonic()
    for hook in hooks:
        httpx.delete(f"{base}/v1/webhooks/{hook['id']}", headers=headers, timeout=30)
    delivered = count1 - count0
    return {
        "subscriptions": subscriptions,
        "seconds": round(t1 - t0, 1),
        "deliveries": delivered,
        "per_s": round(delivered / (t1 - t0), 1),
        "delivery_cpu_ms_per_delivery": round((cpu1 - cpu0) * 1000 / max(1, delivered), 2),
    }
