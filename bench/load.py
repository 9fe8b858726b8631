"""Drives the command mix at the service or the gateway: closed loop and open loop.

The mix is drawn from the seed cases, alternating two kinds of case:

- negotiated: open (buyer), message (buyer), evidence (seller), offer a partial refund
  (seller), accept the offer (buyer): five commands;
- conceded:   open (buyer), message (seller), accept (seller): three commands.

Closed loop: N client threads, each working one case at a time, every command timed from
send to answer. Open loop: commands arrive on a fixed schedule (rate R), whatever the
service does; each latency is measured from the command's *scheduled* time, so a stall
delays and counts every command scheduled during it (no coordinated omission).

HTTP is the standard library's `http.client` over keep-alive connections, one per client
thread: the lightest Python client there is, since the client shares the machine's cores
with what it measures.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bench.common import latency_summary

PHOTO = {"kind": "photo", "uri": "https://files.example/p.jpg",
         "sha256": hashlib.sha256(b"p").hexdigest()}  # fmt: skip
AMOUNT = {"amount": 5000, "currency": "USD"}

Headers = Callable[[str, str], dict[str, str]]


@dataclass
class Case:
    ref: str
    buyer: str
    seller: str
    negotiated: bool
    dispute_path: str = ""
    done: int = 0

    def steps(self) -> list[tuple[str, str, str, dict[str, Any] | None]]:
        """(command, role, path, body) in order."""
        p = self.dispute_path
        opening = {"order_id": self.ref, "reason": "damaged",
                   "requested_resolution": "refund_only", "amount": AMOUNT,
                   "description": "arrived broken", "evidence": [PHOTO]}  # fmt: skip
        if self.negotiated:
            return [
                ("open", "buyer", "/v1/disputes", opening),
                ("message", "buyer", f"{p}/messages", {"body": "the screen is cracked"}),
                ("evidence", "seller", f"{p}/evidence", {"evidence": [PHOTO]}),
                ("offer", "seller", f"{p}/offer",
                 {"type": "partial_refund", "amount": {"amount": 2000, "currency": "USD"}}),
                ("accept-offer", "buyer", f"{p}/accept-offer", {}),
            ]  # fmt: skip
        return [
            ("open", "buyer", "/v1/disputes", opening),
            ("message", "seller", f"{p}/messages", {"body": "sorry about that"}),
            ("accept", "seller", f"{p}/accept", {}),
        ]

    @property
    def finished(self) -> bool:
        return self.done >= (5 if self.negotiated else 3)


class CaseSupply:
    """Hands out pre-registered orders as new cases, alternating the two kinds."""

    def __init__(self, refs: list[tuple[str, str, str]]) -> None:
        self._refs = deque(refs)
        self._lock = threading.Lock()
        self._kinds = itertools.cycle((True, False))
        self.exhausted = False

    def __len__(self) -> int:
        return len(self._refs)

    def new_case(self) -> Case | None:
        with self._lock:
            if not self._refs:
                self.exhausted = True
                return None
            ref, buyer, seller = self._refs.popleft()
            return Case(ref, buyer, seller, next(self._kinds))


class Client:
    """One keep-alive HTTP connection."""

    def __init__(self, base_url: str, headers: Headers) -> None:
        parts = urlsplit(base_url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._headers = headers
        self._conn: http.client.HTTPConnection | None = None

    def call(self, path: str, role: str, who: str, body: object) -> tuple[int, bytes]:
        payload = json.dumps(body).encode()
        headers = {**self._headers(role, who), "Content-Type": "application/json"}
        for attempt in range(2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self._host, self._port, timeout=60)
            try:
                self._conn.request("POST", path, body=payload, headers=headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


@dataclass
class Record:
    """Latencies (s) of answered commands with the time each was answered, and failures."""

    samples: list[tuple[float, float]] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    by_command: dict[str, list[float]] = field(default_factory=dict)

    def add(self, command: str, answered: float, latency: float, status: int) -> None:
        self.samples.append((answered, latency))
        self.statuses[status] = self.statuses.get(status, 0) + 1
        self.by_command.setdefault(command, []).append(latency)


def run_step(client: Client, case: Case, record: Record, scheduled: float | None) -> None:
    command, role, path, body = case.steps()[case.done]
    who = case.buyer if role == "buyer" else case.seller
    started = time.perf_counter()
    status, data = client.call(path, role, who, body)
    answered = time.perf_counter()
    record.add(command, answered, answered - (scheduled if scheduled else started), status)
    if command == "open":
        if status != 201:
            case.done = 99  # cannot go on with this case
            return
        case.dispute_path = f"/v1/disputes/{json.loads(data)['id']}"
    case.done += 1


def summarise(
    records: list[Record], keep: Callable[[float, float], bool], seconds: float
) -> dict[str, Any]:
    """Commands/s and latency of the commands `keep(answered, latency)` selects."""
    latencies = [lat for r in records for (at, lat) in r.samples if keep(at, lat)]
    statuses: dict[str, int] = {}
    for r in records:
        for status, n in r.statuses.items():
            statuses[str(status)] = statuses.get(str(status), 0) + n
    errors = sum(n for s, n in statuses.items() if not s.startswith("2"))
    commands: dict[str, list[float]] = {}
    for r in records:
        for name, values in r.by_command.items():
            commands.setdefault(name, []).extend(values)
    return {
        "per_s": round(len(latencies) / seconds, 1),
        "count": len(latencies),
        "sent": sum(len(r.samples) for r in records),  # warm-up and stragglers included
        **latency_summary(latencies),
        "errors": errors,
        "statuses": statuses,
        "p50_ms_by_command": {
            name: latency_summary(values)["p50_ms"] for name, values in sorted(commands.items())
        },
    }


def closed_loop(
    base_url: str, headers: Headers, supply: CaseSupply, clients: int, seconds: float,
    *, warmup: float = 1.0,
) -> dict[str, Any]:  # fmt: skip
    """N clients, each sending its next command as soon as the last one is answered."""
    records = [Record() for _ in range(clients)]
    start = time.perf_counter()
    stop = start + warmup + seconds

    def loop(record: Record) -> None:
        client = Client(base_url, headers)
        case: Case | None = None
        try:
            while time.perf_counter() < stop:
                if case is None or case.finished:
                    case = supply.new_case()
                    if case is None:
                        return
                run_step(client, case, record, None)
        finally:
            client.close()

    threads = [threading.Thread(target=loop, args=(r,), daemon=True) for r in records]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    begin = start + warmup
    result = summarise(records, lambda at, _: begin <= at <= stop, seconds)
    result["clients"] = clients
    result["supply_exhausted"] = supply.exhausted
    return result


def open_loop(
    base_url: str, headers: Headers, supply: CaseSupply, rate: float, seconds: float,
    *, senders: int = 64, warmup: float = 1.0,
) -> dict[str, Any]:  # fmt: skip
    """Commands scheduled at a fixed rate; latency counted from the scheduled time.

    Each arrival takes a case whose previous command has been answered (or opens a new
    one) and sends its next command. `senders` threads share the schedule; when all of
    them are busy, arrivals wait and the wait counts in their latency.
    """
    records = [Record() for _ in range(senders)]
    ready: deque[Case] = deque()
    lock = threading.Lock()
    ticket = itertools.count()
    start = time.perf_counter() + 0.2
    stop = start + warmup + seconds
    late = [0.0] * senders  # how far behind schedule each sender fell, at worst

    def schedule() -> Iterator[float]:
        while True:
            with lock:
                n = next(ticket)
            at = start + n / rate
            if at >= stop:
                return
            yield at

    def sender(index: int) -> None:
        client = Client(base_url, headers)
        record = records[index]
        try:
            for at in schedule():
                pause = at - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                else:
                    late[index] = max(late[index], -pause)
                with lock:
                    case = ready.popleft() if ready else None
                if case is None:
                    case = supply.new_case()
                    if case is None:
                        return
                run_step(client, case, record, at)
                if not case.finished:
                    with lock:
                        ready.append(case)
        finally:
            client.close()

    threads = [threading.Thread(target=sender, args=(i,), daemon=True) for i in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # The window is by scheduled time: every command scheduled in it counts, however late.
    begin = start + warmup
    result = summarise(records, lambda at, lat: at - lat >= begin, seconds)
    result["target_per_s"] = round(rate, 1)
    result["senders"] = senders
    result["max_behind_schedule_ms"] = round(max(late) * 1000, 1)
    result["supply_exhausted"] = supply.exhausted
    return result
