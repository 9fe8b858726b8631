"""Commands per second one dispute-service process serves on PostgreSQL.

Starts the service with uvicorn on 127.0.0.1 in a PostgreSQL schema of its own (dropped
afterwards), registers orders, and drives a mix of commands (open, message, offer,
accept-offer, evidence) from 1 and then 16 client threads with httpx for --seconds each,
printing commands/s and p50/p99 latency. A script, not a test:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/service_throughput.py --seconds 10
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import psycopg
from psycopg import sql

TOKEN = "bench-internal-token-0123456789"
PHOTO = {"kind": "photo", "uri": "https://f.example/p.jpg",
         "sha256": hashlib.sha256(b"p").hexdigest()}  # fmt: skip


def hdrs(role: str, who: str) -> dict[str, str]:
    return {"X-Internal-Token": TOKEN, "X-Principal-Role": role, "X-Principal-Id": who}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Driver:
    """One client thread: a case at a time, opened and worked through several commands."""

    def __init__(self, base: str, n: int) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)
        self.n = n
        self.latencies: list[float] = []
        self.errors = 0
        self.counter = itertools.count()

    def timed(self, method: str, path: str, role: str, who: str, body: object) -> httpx.Response:
        started = time.perf_counter()
        response = self.client.request(method, path, json=body, headers=hdrs(role, who))
        self.latencies.append(time.perf_counter() - started)
        if response.status_code >= 400:
            self.errors += 1
        return response

    def one_case(self) -> None:
        ref = f"bench-{self.n}-{next(self.counter)}-{uuid.uuid4().hex[:6]}"
        buyer, seller = f"b{self.n}", f"s{self.n}"
        placed = (datetime.now(UTC) - timedelta(days=2)).isoformat()
        self.client.put(
            f"/v1/orders/{ref}",
            headers=hdrs("service", "orders"),
            json={
                "buyer_id": buyer,
                "seller_id": seller,
                "amount": {"amount": 5000, "currency": "USD"},
                "payment_method": "card",
                "placed_at": placed,
            },
        )  # fmt: skip  (setup, not timed)
        opened = self.timed("POST", "/v1/disputes", "buyer", buyer, {
            "order_id": ref, "reason": "damaged", "requested_resolution": "refund_only",
            "amount": {"amount": 5000, "currency": "USD"}, "description": "broken",
            "evidence": [PHOTO]})  # fmt: skip
        if opened.status_code != 201:
            return
        path = f"/v1/disputes/{opened.json()['id']}"
        self.timed("POST", f"{path}/messages", "buyer", buyer, {"body": "hello"})
        self.timed("POST", f"{path}/messages", "seller", seller, {"body": "hi"})
        self.timed("POST", f"{path}/evidence", "seller", seller, {"evidence": [PHOTO]})
        self.timed(
            "POST",
            f"{path}/offer",
            "seller",
            seller,
            {"type": "partial_refund", "amount": {"amount": 2000, "currency": "USD"}},
        )
        self.timed("POST", f"{path}/accept-offer", "buyer", buyer, None)


def drive(base: str, clients: int, seconds: float) -> None:
    drivers = [Driver(base, n) for n in range(clients)]
    stop = time.monotonic() + seconds

    def loop(driver: Driver) -> None:
        while time.monotonic() < stop:
            driver.one_case()

    started = time.monotonic()
    threads = [threading.Thread(target=loop, args=(d,)) for d in drivers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    latencies = sorted(x for d in drivers for x in d.latencies)
    errors = sum(d.errors for d in drivers)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(f"{clients:>2} client(s): {len(latencies)} commands in {elapsed:.1f} s = "
          f"{len(latencies) / elapsed:.0f} commands/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"errors {errors}")  # fmt: skip
    for d in drivers:
        d.client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--threads", type=int, default=16, help="the service's worker threads")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("set DATABASE_URL=postgresql://...", file=sys.stderr)
        return 2
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    parts = urlsplit(url)
    conn = dict(host=parts.hostname, port=parts.port or 5432, user=parts.username or "postgres",
                password=parts.password or "", dbname=parts.path.lstrip("/"))  # fmt: skip
    port = free_port()
    env = {**os.environ, "DISPUTES_DB_SCHEMA": schema, "DISPUTES_SERVICE_TOKEN": TOKEN,
           "DISPUTES_PORT": str(port), "DISPUTES_THREADS": str(args.threads),
           "DISPUTES_ENVIRONMENT": "test"}  # fmt: skip
    server = subprocess.Popen([sys.executable, "-m", "services.dispute"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                print("the service did not start", file=sys.stderr)
                return 1
            time.sleep(0.1)
        print(f"service pid {server.pid}, {args.threads} threads, schema {schema}")
        for clients in args.clients:
            drive(base, clients, args.seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)
        with psycopg.connect(**conn, autocommit=True) as c:  # type: ignore[arg-type]
            c.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
