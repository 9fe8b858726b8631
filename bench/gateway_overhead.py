"""What the public gateway costs: commands/s straight to the dispute service versus through it.

Creates a PostgreSQL schema of its own, starts the real processes as `make run` does
(`python -m services.dispute`, then `python -m services.gateway` forwarding to it) on free
loopback ports, and waits for both /readyz. Then, for each client count and in the same run,
it drives the same command mix against each target for --seconds:

- direct:  the service itself, with the internal headers the gateway would add
           (X-Internal-Token, X-Principal-Role, X-Principal-Id);
- gateway: the public API, with a bearer JWT per principal (minted once, outside the
           timing), the gateway's rate limit raised so no 429 distorts the figures.

The mix, per case and per client thread: register an order (PUT), open a dispute, a
message from each party, an offer from the seller; every request is timed. Prints a
Markdown table of commands/s, p50/p99 latency and non-2xx answers, with the gateway/direct
throughput ratio; stops the processes and drops the schema at the end, also on Ctrl-C.
A script, not a test:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/gateway_overhead.py --seconds 10 --clients 1,16
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import httpx
import psycopg
from psycopg import sql
from pydantic import SecretStr
from service_throughput import PHOTO, TOKEN, free_port  # bench/ is sys.path[0]

from services.gateway.auth import mint_token
from services.gateway.settings import GatewaySettings

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"
JWT_SECRET = "bench-jwt-secret-0123456789-abcdefghijklmn"
RATE_LIMIT = "1000000/second"  # far above what one machine can send: no 429s
READY_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 10.0
JOIN_SLACK_SECONDS = 60.0  # a client thread finishes its request in flight, then stops
TARGETS = ("direct", "gateway")

Headers = Callable[[str, str], dict[str, str]]


class Interrupted(Exception):
    pass


def internal_headers(role: str, who: str) -> dict[str, str]:
    return {"X-Internal-Token": TOKEN, "X-Principal-Role": role, "X-Principal-Id": who}


def bearer_headers() -> Headers:
    """Headers for the gateway: one token per principal, minted on first use."""
    settings = GatewaySettings(  # type: ignore[call-arg]
        _env_file=None, environment="test", jwt_secret=SecretStr(JWT_SECRET)
    )
    cache: dict[tuple[str, str], dict[str, str]] = {}
    lock = threading.Lock()

    def headers(role: str, who: str) -> dict[str, str]:
        with lock:
            if (role, who) not in cache:
                token = mint_token(settings, role=role, sub=who, ttl_seconds=3600)
                cache[role, who] = {"Authorization": f"Bearer {token}"}
            return cache[role, who]

    return headers


class Driver:
    """One client thread: a case at a time, each case the same five timed commands."""

    def __init__(self, base: str, headers: Headers, tag: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=30)
        self.headers = headers
        self.buyer, self.seller = f"{tag}-buyer", f"{tag}-seller"
        self.tag = tag
        self.counter = itertools.count()
        self.latencies: list[float] = []
        self.non_2xx = 0
        for role, who in (("service", "orders"), ("buyer", self.buyer), ("seller", self.seller)):
            headers(role, who)  # mint the tokens now, not inside the timing

    def timed(self, method: str, path: str, role: str, who: str, body: object) -> httpx.Response:
        headers = self.headers(role, who)
        started = time.perf_counter()
        try:
            response = self.client.request(method, path, json=body, headers=headers)
        except httpx.HTTPError:
            self.latencies.append(time.perf_counter() - started)
            self.non_2xx += 1  # no answer at all: counted with the failures
            raise
        self.latencies.append(time.perf_counter() - started)
        if not 200 <= response.status_code < 300:
            self.non_2xx += 1
        return response

    def one_case(self) -> None:
        ref = f"{self.tag}-{next(self.counter)}-{uuid.uuid4().hex[:6]}"
        placed = (datetime.now(UTC) - timedelta(days=2)).isoformat()
        order = {
            "buyer_id": self.buyer,
            "seller_id": self.seller,
            "amount": {"amount": 5000, "currency": "USD"},
            "payment_method": "card",
            "placed_at": placed,
        }
        if self.timed("PUT", f"/v1/orders/{ref}", "service", "orders", order).is_error:
            return
        opened = self.timed("POST", "/v1/disputes", "buyer", self.buyer, {
            "order_id": ref, "reason": "damaged", "requested_resolution": "refund_only",
            "amount": {"amount": 5000, "currency": "USD"}, "description": "broken",
            "evidence": [PHOTO]})  # fmt: skip
        if opened.status_code != 201:
            return
        path = f"/v1/disputes/{opened.json()['id']}"
        self.timed("POST", f"{path}/messages", "buyer", self.buyer, {"body": "hello"})
        self.timed("POST", f"{path}/messages", "seller", self.seller, {"body": "hi"})
        offer = {"type": "partial_refund", "amount": {"amount": 2000, "currency": "USD"}}
        self.timed("POST", f"{path}/offer", "seller", self.seller, offer)


@dataclass
class Result:
    target: str
    clients: int
    commands: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non_2xx: int

    @property
    def per_second(self) -> float:
        return self.commands / self.seconds if self.seconds else 0.0


def percentile(ordered: list[float], fraction: float) -> float:
    """Nearest rank on an ascending list, in milliseconds (0 for no samples)."""
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000


def drive(
    base: str, headers: Headers, target: str, clients: int, seconds: float, quit_: threading.Event
) -> Result:
    run = uuid.uuid4().hex[:6]
    drivers = [Driver(base, headers, f"{target}-{run}-{n}") for n in range(clients)]
    stop = time.monotonic() + seconds

    def loop(driver: Driver) -> None:
        while time.monotonic() < stop and not quit_.is_set():
            try:
                driver.one_case()
            except httpx.HTTPError:
                time.sleep(0.05)  # counted; do not spin on a process that is gone

    threads = [threading.Thread(target=loop, args=(d,), daemon=True) for d in drivers]
    started = time.monotonic()
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=max(0.0, stop - time.monotonic()) + JOIN_SLACK_SECONDS)
    except BaseException:
        quit_.set()  # Ctrl-C: the threads stop after the request in flight
        raise
    elapsed = time.monotonic() - started
    if any(t.is_alive() for t in threads):
        quit_.set()  # a request hung past its timeout: the caller gives up
    else:
        for d in drivers:
            d.client.close()
    latencies = sorted(x for d in drivers for x in d.latencies)
    return Result(
        target=target,
        clients=clients,
        commands=len(latencies),
        seconds=elapsed,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        non_2xx=sum(d.non_2xx for d in drivers),
    )


def table(results: list[Result]) -> str:
    rows = [
        "| target | clients | commands | commands/s | p50 ms | p99 ms | non-2xx "
        "| gateway/direct (commands/s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    direct = {r.clients: r for r in results if r.target == "direct"}
    for r in results:
        base = direct.get(r.clients)
        ratio = "1.00" if r.target == "direct" else "n/a"
        if r.target == "gateway" and base is not None and base.per_second:
            ratio = f"{r.per_second / base.per_second:.2f}"
        rows.append(
            f"| {r.target} | {r.clients} | {r.commands} | {r.per_second:.0f} | "
            f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.non_2xx} | {ratio} |"
        )
    return "\n".join(rows)


@dataclass
class Processes:
    database_url: str
    schema: str
    logs: Path
    service_port: int
    gateway_port: int
    started: dict[str, subprocess.Popen[bytes]]

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTES_")}
        return {
            **keep,
            "DATABASE_URL": self.database_url,
            "DISPUTES_DB_SCHEMA": self.schema,
            "DISPUTES_ENVIRONMENT": "test",
            "DISPUTES_SERVICE_TOKEN": TOKEN,
            "DISPUTES_JWT_SECRET": JWT_SECRET,
            "DISPUTES_HOST": "127.0.0.1",
            "DISPUTES_PORT": str(self.service_port),
            "DISPUTES_GATEWAY_HOST": "127.0.0.1",
            "DISPUTES_GATEWAY_PORT": str(self.gateway_port),
            "DISPUTES_UPSTREAM_URL": f"http://127.0.0.1:{self.service_port}",
            "DISPUTES_RATE_LIMIT": RATE_LIMIT,
        }

    def start(self, name: str, module: str, extra: dict[str, str]) -> None:
        with (self.logs / f"{name}.log").open("ab") as log:
            # A session of its own: Ctrl-C reaches only this script, which stops them in order.
            self.started[name] = subprocess.Popen(
                [sys.executable, "-m", module],
                env={**self.env(), **extra},
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while True:
            for name, process in self.started.items():
                if process.poll() is not None:
                    raise RuntimeError(f"the {name} exited ({process.returncode})\n{self.tail()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{url} not ready in {READY_TIMEOUT_SECONDS:.0f} s\n{self.tail()}"
                )
            time.sleep(0.1)

    def stop_all(self) -> None:
        for name in ("gateway", "service"):  # the gateway first, the service last
            process = self.started.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                print(f"the {name} did not stop in time; killing it", file=sys.stderr)
                process.kill()
                process.wait()

    def tail(self, lines: int = 20) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


def client_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("--clients takes numbers such as 1,16") from None
    if not counts or any(not 1 <= c <= 256 for c in counts):
        raise argparse.ArgumentTypeError("--clients takes numbers from 1 to 256, such as 1,16")
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="per target and client count")
    parser.add_argument("--clients", type=client_counts, default=[1, 16], help="e.g. 1,16")
    parser.add_argument("--warmup", type=float, default=1.0, help="untimed seconds per target")
    parser.add_argument("--threads", type=int, default=16, help="the service's worker threads")
    args = parser.parse_args()
    if not 0 < args.seconds <= 600 or not 0 <= args.warmup <= 60:
        parser.error("--seconds must be in (0, 600] and --warmup in [0, 60]")
    url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    schema = f"bench_gw_{uuid.uuid4().hex[:8]}"
    quit_ = threading.Event()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as logs:
        procs = Processes(url, schema, Path(logs), free_port(), free_port(), {})
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            procs.start("service", "services.dispute", {"DISPUTES_THREADS": str(args.threads)})
            procs.wait_ready(f"http://127.0.0.1:{procs.service_port}")
            procs.start("gateway", "services.gateway", {})
            procs.wait_ready(f"http://127.0.0.1:{procs.gateway_port}")
            bases = {
                "direct": (f"http://127.0.0.1:{procs.service_port}", internal_headers),
                "gateway": (f"http://127.0.0.1:{procs.gateway_port}", bearer_headers()),
            }
            print(
                f"schema {schema}; service :{procs.service_port} ({args.threads} threads), "
                f"gateway :{procs.gateway_port}; {args.seconds:g} s per run",
                flush=True,
            )
            for clients in args.clients:
                for target in TARGETS:
                    base, headers = bases[target]
                    if args.warmup:
                        drive(base, headers, target, clients, args.warmup, quit_)
                    result = drive(base, headers, target, clients, args.seconds, quit_)
                    if quit_.is_set():
                        raise Interrupted("a client thread did not finish")
                    results.append(result)
                    print(
                        f"  {target:>7}, {clients:>3} client(s): {result.per_second:.0f} "
                        f"commands/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms, "
                        f"non-2xx {result.non_2xx}",
                        flush=True,
                    )
        except Interrupted as why:
            print(f"\nstopped ({why}); cleaning up", file=sys.stderr)
            return 130
        except (RuntimeError, psycopg.Error) as exc:
            print(f"bench: {exc}", file=sys.stderr)
            return 1
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            quit_.set()
            procs.stop_all()
            drop = sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(drop)
            except psycopg.Error as exc:
                print(f"bench: could not drop schema {schema}: {exc}", file=sys.stderr)
            if results:
                print()
                print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
