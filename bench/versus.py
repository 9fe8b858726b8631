"""The service beside the plain CRUD service a team would otherwise write (issue 16).

One command, `POST /v1/disputes/{id}/messages`, closed loop, each client its own buyer
and its own disputes (so no two clients ever touch one row or one aggregate), at 8 and at
32 clients, to four targets in the same run, on the same database:

- peer: the plain CRUD FastAPI service (bench/peer.py), 2 uvicorn workers, access log on;
- floor: the same SQL on bare ASGI with orjson (bench/floor.py), 2 workers, no log;
- direct: the dispute service (DISPUTES_PROCESSES processes), with the internal token;
- gateway: the same through the gateway, with a bearer token.

The peer and the floor take the same bearer tokens as the gateway. A pass measures every
target once at each concurrency (the order of the targets rotating from pass to pass);
each ratio to the peer is taken within one pass, so a slower minute on this shared machine
moves both sides of it; the summary is the median over the passes. Server CPU is the CPU
the target's own processes spent per command sent (the dispute service, and the gateway
through it; the peer's or the floor's uvicorn processes); PostgreSQL's, the projector's
and the load generator's are reported beside it.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench import plain
from bench.common import postgres_cpu_seconds, proc_stats, scratch_schema, tree_stats
from bench.load import AMOUNT, PHOTO, Client, Record, summarise
from bench.stack import JWT_SECRET, SERVICE_TOKEN, application, register_orders, running_stack
from services.stack import Stack, free_port

TARGETS = ("peer", "floor", "direct", "gateway")
PEER_PROCESSES = 2
# Connections per peer (and floor) worker process, and the service's DISPUTES_THREADS
# (threads and pooled connections per process): more than 2 cores keep busy, and few
# enough that this part and the test suites other people run on the machine stay under
# PostgreSQL's max_connections (100 here).
PEER_POOL_SIZE = 4
SERVICE_THREADS = 8
DISPUTES_PER_CLIENT = 4
MESSAGE = {"body": "Any news about the parcel? It still has not arrived."}
START_TIMEOUT_SECONDS = 60.0

Headers = Callable[[str, str], dict[str, str]]


@dataclass
class Server:
    """A uvicorn process (and its workers) serving one of the yardsticks."""

    name: str
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_server(name: str, factory: str, config: plain.Config, logs: Path) -> Server:
    port = free_port()
    options = ["--no-access-log"] if name == "floor" else []  # the peer logs every request
    log = (logs / f"{name}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", "127.0.0.1",
         "--port", str(port), "--workers", str(PEER_PROCESSES), *options],
        env={**os.environ, **config.environment()}, stdout=log, stderr=log,
    )  # fmt: skip
    log.close()
    server = Server(name, process, port)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not answers(server):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(server)
            tail = (logs / f"{name}.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the {name} did not start\n{tail}")
        time.sleep(0.1)
    return server


def answers(server: Server) -> bool:
    """Whether it answers HTTP at all (an unauthenticated POST: a 401 is an answer)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=2)
    try:
        conn.request("POST", "/v1/disputes/x/messages", body=b"{}")
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@contextmanager
def running_yardsticks(
    url: str, logs: Path, pool_size: int
) -> Iterator[tuple[str, dict[str, Server]]]:
    """The peer and the floor on one scratch schema of their own (its name, and the
    servers by name); stopped and dropped afterwards."""
    with scratch_schema(url, "peer") as schema:
        plain.create_tables(url, schema)
        config = plain.Config(url, schema, JWT_SECRET, pool_size)
        servers: dict[str, Server] = {}
        try:
            servers["peer"] = start_server("peer", "bench.peer:create_app", config, logs)
            servers["floor"] = start_server("floor", "bench.floor:create_app", config, logs)
            yield schema, servers
        finally:
            for server in servers.values():
                stop_server(server)


def parties(clients: int) -> list[tuple[str, str]]:
    """(buyer, seller) of each client: its own buyer."""
    return [(f"vs-buyer-{i}", f"vs-seller-{i}") for i in range(clients)]


def open_service_disputes(stack: Stack, who: list[tuple[str, str]]) -> list[list[str]]:
    """DISPUTES_PER_CLIENT disputes for each buyer, opened through the service's API."""
    refs = [(f"vs-order-{b}-{n}", b, s) for b, s in who for n in range(DISPUTES_PER_CLIENT)]
    app = application(stack)
    register_orders(app, refs)
    app.close()
    client = Client(stack.service_url, internal_headers)
    ids: list[list[str]] = [[] for _ in who]
    try:
        for n, (ref, buyer, _) in enumerate(refs):
            opening = {"order_id": ref, "reason": "not_received",
                       "requested_resolution": "refund_only", "amount": AMOUNT,
                       "description": "never arrived", "evidence": [PHOTO]}  # fmt: skip
            status, data = client.call("/v1/disputes", "buyer", buyer, opening)
            if status != 201:
                raise RuntimeError(f"opening a dispute answered {status}: {data[:300]!r}")
            ids[n // DISPUTES_PER_CLIENT].append(json.loads(data)["id"])
    finally:
        client.close()
    return ids


def internal_headers(role: str, who: str) -> dict[str, str]:
    return {"X-Internal-Token": SERVICE_TOKEN, "X-Principal-Role": role, "X-Principal-Id": who}


def bearer(stack: Stack) -> Headers:
    cache: dict[tuple[str, str], dict[str, str]] = {}
    lock = threading.Lock()

    def headers(role: str, who: str) -> dict[str, str]:
        with lock:
            if (role, who) not in cache:
                token = stack.token(role, who, ttl_seconds=6 * 3600)
                cache[(role, who)] = {"Authorization": f"Bearer {token}"}
            return cache[(role, who)]

    return headers


def message_loop(
    base_url: str, headers: Headers, who: list[tuple[str, str]], disputes: list[list[str]],
    seconds: float, *, warmup: float = 0.5,
) -> dict[str, Any]:  # fmt: skip
    """One client per (buyer, its disputes): each posts a message to its next dispute as
    soon as the last one is answered."""
    records = [Record() for _ in who]
    start = time.perf_counter()
    stop = start + warmup + seconds

    def loop(index: int) -> None:
        client = Client(base_url, headers)
        buyer, mine, record = who[index][0], disputes[index], records[index]
        try:
            n = 0
            while time.perf_counter() < stop:
                path = f"/v1/disputes/{mine[n % len(mine)]}/messages"
                began = time.perf_counter()
                status, _ = client.call(path, "buyer", buyer, MESSAGE)
                answered = time.perf_counter()
                record.add("message", answered, answered - began, status)
                n += 1
        finally:
            client.close()

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(len(who))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    begin = start + warmup
    result = summarise(records, lambda at, _: begin <= at <= stop, seconds)
    result["clients"] = len(who)
    return result


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    spent = {}
    for name, pid in pids.items():
        try:
            spent[name] = tree_stats(pid).cpu_seconds
        except (FileNotFoundError, ProcessLookupError):
            continue
    spent["postgres"] = postgres_cpu_seconds()
    spent["load generator"] = proc_stats(os.getpid()).cpu_seconds
    return spent


SERVERS = {
    "peer": ("peer",),
    "floor": ("floor",),
    "direct": ("service",),
    "gateway": ("service", "gateway"),
}


def timed(pids: dict[str, int], target: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`run()`'s result with CPU ms per command sent of each process, and of the target's
    own servers (`server_cpu_ms`)."""
    before = cpu_seconds(pids)
    result = run()
    after = cpu_seconds(pids)
    count = max(1, result["sent"])
    result["cpu_ms_per_command"] = {
        name: round((after[name] - before[name]) * 1000 / count, 3)
        for name in after
        if name in before
    }
    servers = {name: result["cpu_ms_per_command"].get(name, 0.0) for name in SERVERS[target]}
    result["server_cpu_ms"] = servers
    result["server_cpu_ms_total"] = round(sum(servers.values()), 3)
    return result


def summary(
    passes: list[dict[str, dict[str, dict[str, Any]]]], targets: tuple[str, ...] = TARGETS
) -> dict[str, Any]:
    """Per concurrency and target: medians over the passes, and the ratios to the peer
    taken within each pass."""
    out: dict[str, Any] = {}
    for clients in passes[0]:
        out[clients] = {}
        for target in targets:
            runs = [p[clients][target] for p in passes]
            peers = [p[clients]["peer"] for p in passes]
            ratios = [r["per_s"] / max(q["per_s"], 1e-9) for r, q in zip(runs, peers, strict=True)]
            cpu_ratios = [
                r["server_cpu_ms_total"] / max(q["server_cpu_ms_total"], 1e-9)
                for r, q in zip(runs, peers, strict=True)
            ]
            tiers = runs[0]["server_cpu_ms"].keys()
            out[clients][target] = {
                "per_s": round(statistics.median(r["per_s"] for r in runs), 1),
                "per_s_each": [r["per_s"] for r in runs],
                "ratio_to_peer": round(statistics.median(ratios), 3),
                "ratio_to_peer_each": [round(x, 3) for x in ratios],
                "server_cpu_ms": {
                    tier: round(statistics.median(r["server_cpu_ms"][tier] for r in runs), 2)
                    for tier in tiers
                },
                "server_cpu_ms_total": round(
                    statistics.median(r["server_cpu_ms_total"] for r in runs), 2
                ),
                "cpu_ratio_to_peer": round(statistics.median(cpu_ratios), 3),
                "postgres_cpu_ms": round(
                    statistics.median(r["cpu_ms_per_command"]["postgres"] for r in runs), 2
                ),
                "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 2),
                "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 2),
                "errors": sum(r["errors"] for r in runs),
            }
    return out


def measure(
    url: str, *, clients: tuple[int, ...], passes: int, seconds: float, processes: int,
    threads: int, log: Callable[[str], None], targets: tuple[str, ...] = TARGETS,
) -> dict[str, Any]:  # fmt: skip
    """The four targets, `passes` times at each concurrency; see the module's doc."""
    who = parties(max(clients))
    with (
        tempfile.TemporaryDirectory(prefix="bench-peer-") as logs,
        running_stack(url, threads=threads, processes=processes) as stack,
        running_yardsticks(url, Path(logs), pool_size=PEER_POOL_SIZE) as (schema, yardsticks),
    ):
        service_disputes = open_service_disputes(stack, who)
        peer_disputes = plain.seed(url, schema, who, DISPUTES_PER_CLIENT)
        tokens = bearer(stack)
        served: dict[str, tuple[str, Headers, list[list[str]]]] = {
            "peer": (yardsticks["peer"].url, tokens, peer_disputes),
            "floor": (yardsticks["floor"].url, tokens, peer_disputes),
            "direct": (stack.service_url, internal_headers, service_disputes),
            "gateway": (stack.gateway_url, tokens, service_disputes),
        }
        pids = {name: p.pid for name, p in stack.processes.items()}
        pids |= {name: s.process.pid for name, s in yardsticks.items()}
        for base, headers, disputes in served.values():  # warm-up: connections, caches
            message_loop(base, headers, who[:4], disputes[:4], 1.0, warmup=0)
        results: list[dict[str, dict[str, dict[str, Any]]]] = []
        for n in range(passes):
            order = targets[n % len(targets) :] + targets[: n % len(targets)]
            this: dict[str, dict[str, dict[str, Any]]] = {}
            for c in clients:
                this[str(c)] = {}
                for target in order:
                    base, headers, disputes = served[target]
                    run = partial(message_loop, base, headers, who[:c], disputes[:c], seconds)
                    result = timed(pids, target, run)
                    this[str(c)][target] = result
                    log(f"  pass {n + 1} {target:>7} {c:>2} clients: {result['per_s']:>7.1f}/s, "
                        f"server CPU {result['server_cpu_ms']} ms, p99 {result['p99_ms']} ms, "
                        f"errors {result['errors']}")  # fmt: skip
            results.append(this)
    return {
        "command": "POST /v1/disputes/{id}/messages",
        "passes": results,
        "summary": summary(results, targets),
        "peer_processes": PEER_PROCESSES,
        "peer_pool_size": PEER_POOL_SIZE,
        "service_processes": processes,
        "service_threads": threads,
        "disputes_per_client": DISPUTES_PER_CLIENT,
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.versus`: this part alone, its summary as JSON on standard output."""
    import argparse

    from bench.common import database_url

    parser = argparse.ArgumentParser(prog="python -m bench.versus", description=__doc__)
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=SERVICE_THREADS)
    parser.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    parser.add_argument("--out", type=Path, help="write the whole result here as JSON")
    args = parser.parse_args(argv)
    result = measure(
        database_url(), clients=tuple(args.clients), passes=args.passes, seconds=args.seconds,
        processes=args.processes, threads=args.threads, targets=tuple(args.targets),
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
