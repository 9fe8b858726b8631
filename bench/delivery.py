"""Events out under load: webhook and JetStream delivery lag, and webhook throughput.

- A webhook receiver in a process of its own (bench/receiver.py: one thread per
  connection, answers 204 at once) and a JetStream ordered consumer record when each
  event arrives; the event's lag is
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
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.common import latency_summary

NATS_URL = "nats://127.0.0.1:4222"
Arrival = tuple[float, int, float]  # arrival time, position, the event's time


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
    """The webhook receiver (bench/receiver.py) in a process of its own; its records
    (path, arrival time, position, event time) are read back from a file."""

    def __init__(self, directory: Path) -> None:
        port_file, self.records = directory / "receiver.port", directory / "receiver.tsv"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.receiver", str(port_file), str(self.records)],
            cwd=Path(__file__).resolve().parent.parent,
        )
        if not wait_until(lambda: port_file.exists() and port_file.read_text() != "", 30):
            raise RuntimeError("the webhook receiver did not start")
        self.url = f"http://127.0.0.1:{port_file.read_text()}"
        self.received: list[tuple[str, float, int, float]] = []
        self.offset = 0

    def _read(self) -> list[tuple[str, float, int, float]]:
        if self.records.exists():
            with self.records.open() as f:
                f.seek(self.offset)
                text = f.read()
            complete = text[: text.rfind("\n") + 1]
            self.offset += len(complete)
            for line in complete.splitlines():
                path, arrived, position, stamp = line.split("\t")
                self.received.append((path, float(arrived), int(position), float(stamp)))
        return self.received

    def count(self, path: str | None = None) -> int:
        return sum(1 for p, *_ in self._read() if path is None or p.startswith(path))

    def arrivals(self, path: str) -> list[Arrival]:
        return [(a, pos, stamp) for p, a, pos, stamp in self._read() if p == path]

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


class JetStreamWatcher(threading.Thread):
    """An ordered consumer on the stream, recording (arrival time, body) of each message."""

    def __init__(self, url: str, stream: str, subjects: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stream, self.subjects = url, stream, subjects
        self.received: list[Arrival] = []
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
                arrived = time.time()
                stamp, position = _event_time(msg.data)
                self.received.append((arrived, position, stamp))
            await js.delete_stream(self.stream)
        finally:
            await nc.close()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=30)


def lags(arrivals: list[Arrival], windows: list[tuple[str, float, float]]) -> dict[str, Any]:
    """Lag summaries of the events committed within each window (label, start, end): the
    first arrival of each position only."""
    first: dict[int, tuple[float, float]] = {}
    for arrived, position, stamp in arrivals:
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


def reached(arrivals: list[Arrival], position: int) -> bool:
    """Whether the last arrival (they come in position order) is at `position` or past."""
    return bool(arrivals) and arrivals[-1][1] >= position


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
