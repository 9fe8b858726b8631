"""`make bench`: the dispute service measured against this machine's own limits, in one run.

    python -m bench [--quick] [--out bench/results]

On PostgreSQL (DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/test), every
part in a scratch schema dropped afterwards:

1. The limits: the least one command must do (read one case's events, append one event,
   commit) with psycopg threads and with pgbench, with and without eventsourcing's table
   lock; and eventsourcing's own `save()` of one event. At 1, 8 and 32 clients.
2. The service: the real processes (`make run`'s five), the seed-case command mix
   (bench/load.py) straight to the dispute service and through the gateway, closed loop at
   1, 8 and 32 clients, then open loop at half the peak. While it runs, a follower tails
   the event feed as the projector does; at the end it must have seen every stored event.
   Meanwhile a webhook receiver and a JetStream consumer (when NATS answers on
   127.0.0.1:4222) record each event's delivery lag, and at the end webhooks replaying the
   feed show the deliveries per second one delivery process sustains (bench/delivery.py).
3. Beside the plain service (bench/versus.py): `POST /v1/disputes/{id}/messages`, closed
   loop, each client its own buyer and disputes, at 8 and 32 clients, to the plain CRUD
   FastAPI peer a team would otherwise write (bench/peer.py), to the same SQL on bare
   ASGI (bench/floor.py), and to this service straight and through the gateway; passes
   interleaved, every ratio to the peer taken within one pass.
4. Scale: command latency with 1,000 and with 1,000,000 stored events; loading a case of
   10 and of 10,000 events with and without snapshots; feed read and projection rebuild.
5. Memory: the peak RSS of each process.
6. The Merkle log (bench/merkle_log.py): tree maintenance in events/s over 1,000,000
   stored events, storage per event, a signed checkpoint's and the proofs' sizes and
   times at that size, one case's verification, and the cost per command without and
   with the notary following the writes.

Writes bench/results/<full|quick>.{json,md,png} and prints the Markdown. `--quick` runs
every part, shorter and with 100,000 instead of 1,000,000 stored events (about 3 minutes).
A script, not a test: its figures are measurements, nothing asserts on them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import delivery, limits, merkle_log, report, scale, versus
from bench.common import (
    ROOT,
    cpu_busy_seconds,
    database_url,
    machine,
    postgres_cpu_seconds,
    proc_stats,
)
from bench.load import CaseSupply, closed_loop, open_loop
from bench.stack import SERVICE_TOKEN, application, register_orders, running_stack, stats
from services.stack import Stack


@dataclass(frozen=True)
class Plan:
    mode: str
    clients: tuple[int, ...]
    limit_seconds: float
    load_seconds: float
    open_seconds: float
    scale_seconds: float
    big_store: int
    case_sizes: tuple[int, ...]
    rebuild_events: int
    orders: int
    delivery_seconds: float = 5.0
    merkle_events: int = 1_000_000
    merkle_seconds: float = 8.0
    versus_passes: int = 2
    versus_seconds: float = 5.0
    # DISPUTES_PROCESSES of the measured service: one per core, as it would be deployed.
    service_processes: int = field(default_factory=lambda: os.cpu_count() or 1)

    @classmethod
    def full(cls) -> Plan:
        return cls("full", (1, 8, 32), 5, 10, 15, 8, 1_000_000, (10, 10_000), 200_000, 30_000, 10)

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            "quick", (1, 8, 32), 1, 2.5, 4, 2, 100_000, (10, 10_000), 50_000, 12_000, 3,
            merkle_events=100_000, merkle_seconds=3.0, versus_passes=1, versus_seconds=2.0,
        )  # fmt: skip


def internal_headers(role: str, who: str) -> dict[str, str]:
    return {"X-Internal-Token": SERVICE_TOKEN, "X-Principal-Role": role, "X-Principal-Id": who}


def bearer_headers(stack: Stack) -> Any:
    cache: dict[tuple[str, str], dict[str, str]] = {}
    lock = threading.Lock()

    def headers(role: str, who: str) -> dict[str, str]:
        with lock:
            if (role, who) not in cache:
                cache[(role, who)] = {
                    "Authorization": f"Bearer {stack.token(role, who, ttl_seconds=6 * 3600)}"
                }
            return cache[(role, who)]

    return headers


class FeedFollower(threading.Thread):
    """Tails the event feed as the projector and the deadline worker do (from the last id
    seen, in pages), during the load. A feed that let a later id commit before an earlier
    one would make it skip the earlier one for good."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True)
        self.app = application(stack)
        self.seen: list[int] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while True:
            stop = self.stopping.is_set()
            self.catch_up()
            if stop:
                return
            time.sleep(0.02)

    def catch_up(self) -> None:
        while True:
            start = self.seen[-1] + 1 if self.seen else 1
            page = self.app.recorder.select_notifications(start, 1000)
            self.seen += [n.id for n in page]
            if len(page) < 1000:
                return

    def verdict(self) -> dict[str, Any]:
        self.stopping.set()
        self.join()
        stored = [n.id for n in self.app.recorder.select_notifications(1, 10_000_000)]
        self.app.close()
        missed = sorted(set(stored) - set(self.seen))
        increasing = all(a < b for a, b in zip(self.seen, self.seen[1:], strict=False))
        return {
            "stored": len(stored),
            "seen": len(self.seen),
            "missed": len(missed),
            "first_missed": missed[:10],
            "strictly_increasing": increasing,
        }


def measured(stack: Stack, run: Any) -> dict[str, Any]:
    """`run()`'s result with each process's CPU ms per command and the machine's load."""

    def cpu() -> dict[str, float]:
        spent = {name: s.cpu_seconds for name, s in stats(stack).items()}
        spent["postgres"] = postgres_cpu_seconds()
        spent["load generator"] = proc_stats(os.getpid()).cpu_seconds  # this process
        return spent

    before, (busy0, total0) = cpu(), cpu_busy_seconds()
    result: dict[str, Any] = run()
    after, (busy1, total1) = cpu(), cpu_busy_seconds()
    count = max(1, result["sent"])  # the CPU was spent on every command sent
    result["cpu_ms_per_command"] = {
        name: round((after[name] - before[name]) * 1000 / count, 2)
        for name in after
        if name in before
    }
    total = sum(result["cpu_ms_per_command"].values())
    result["cpu_ms_per_command_total"] = round(total, 2)
    # What the cores could serve if the CPU all these processes spend were the only limit.
    result["cpu_bound_per_s"] = round((os.cpu_count() or 1) * 1000 / max(total, 1e-9), 1)
    result["machine_busy_pct"] = round(100 * (busy1 - busy0) / max(1e-9, total1 - total0), 1)
    return result


def orders_for(prefix: str, count: int) -> list[tuple[str, str, str]]:
    return [(f"{prefix}-{i}", f"buyer-{i % 200}", f"seller-{i % 50}") for i in range(count)]


def measure_service(url: str, plan: Plan, log: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"closed": {"direct": {}, "gateway": {}}, "open": {}}
    use_nats = delivery.nats_available()
    stream = f"BENCH_{time.monotonic_ns()}"
    delivery_env = {"DISPUTES_WEBHOOKS_ALLOW_PRIVATE": "1"}
    if use_nats:
        delivery_env |= {
            "DISPUTES_NATS_URL": delivery.NATS_URL,
            "DISPUTES_NATS_STREAM": stream,
            "DISPUTES_NATS_SUBJECT_PREFIX": f"{stream.lower()}.events",
        }
    receiver = delivery.Receiver(Path(tempfile.mkdtemp(prefix="bench-receiver-")))
    watcher = None
    with (
        contextlib.closing(receiver),
        running_stack(url, processes=plan.service_processes, delivery_env=delivery_env) as stack,
    ):
        if use_nats:
            watcher = delivery.JetStreamWatcher(
                delivery.NATS_URL, stream, f"{stream.lower()}.events.>"
            )
            watcher.start()
            watcher.ready.wait(30)
        app = application(stack)
        refs = orders_for("load", plan.orders)
        started = time.monotonic()
        register_orders(app, refs)
        stored = app.recorder.max_notification_id() or 0
        app.close()
        if watcher is not None:  # the relay catches up on the registrations first
            caught_up = delivery.wait_until(lambda: delivery.reached(watcher.received, stored), 300)
            seconds = time.monotonic() - started
            out["jetstream_catch_up"] = {
                "events": len(watcher.received), "seconds": round(seconds, 1),
                "per_s": round(len(watcher.received) / seconds, 1), "complete": caught_up,
            }  # fmt: skip
            log(f"  JetStream relay: {out['jetstream_catch_up']}")
        service = internal_headers("service", "bench")
        delivery.subscribe(stack.service_url, service, f"{receiver.url}/lag")
        windows: list[tuple[str, float, float]] = []
        supply = CaseSupply(refs)
        targets = {
            "direct": (stack.service_url, internal_headers),
            "gateway": (stack.gateway_url, bearer_headers(stack)),
        }
        follower = FeedFollower(stack)
        follower.start()
        closed_loop(stack.gateway_url, targets["gateway"][1], supply, 4, 2)  # warm-up
        for clients in plan.clients:
            for name, (base, headers) in targets.items():
                began = time.time()
                result = measured(
                    stack,
                    lambda b=base, h=headers, c=clients: closed_loop(
                        b, h, supply, c, plan.load_seconds
                    ),
                )
                windows.append((str(clients), began, time.time()))
                out["closed"][name][str(clients)] = result
                log(f"  {name:>7} {clients:>2} clients: {result['per_s']:>7.1f} commands/s, "
                    f"p99 {result['p99_ms']} ms, errors {result['errors']}")  # fmt: skip
        # The open loop measures the service at half its peak on a settled machine: the
        # closed loop leaves the webhook deliveries tens of seconds behind, and measuring
        # while they catch up measured the delivery process as much as the service.
        out["settled_s"] = settle(stack, receiver, watcher)
        log(f"  deliveries caught up in {out['settled_s']} s")
        for name, (base, headers) in targets.items():
            peak = max(r["per_s"] for r in out["closed"][name].values())
            rate = max(1.0, peak / 2)
            result = measured(
                stack,
                lambda b=base, h=headers, r=rate: open_loop(b, h, supply, r, plan.open_seconds),
            )
            out["open"][name] = result
            log(f"  {name:>7} open loop at {rate:.0f}/s: p99 {result['p99_ms']} ms")
        out["feed"] = follower.verdict()
        log(f"  feed: {out['feed']}")
        out["delivery"] = measure_delivery(stack, plan, receiver, watcher, windows, log)
        out["memory_mib"] = {
            name: {"sum": s.peak_rss_mib, "largest": s.largest_peak_rss_mib,
                   "processes": s.processes}
            for name, s in stats(stack).items()
        }  # fmt: skip
        out["orders_left"] = len(supply)
    return out


def settle(
    stack: Stack, receiver: delivery.Receiver, watcher: delivery.JetStreamWatcher | None
) -> float:
    """Seconds until the webhook receiver (and the JetStream consumer) have every event
    stored so far (at most 120 s each)."""
    began = time.monotonic()
    app = application(stack)
    end = app.recorder.max_notification_id() or 0
    app.close()
    delivery.wait_until(lambda: delivery.reached(receiver.arrivals("/lag"), end), 120)
    if watcher is not None:
        delivery.wait_until(lambda: delivery.reached(watcher.received, end), 120)
    return round(time.monotonic() - began, 1)


def measure_delivery(
    stack: Stack,
    plan: Plan,
    receiver: delivery.Receiver,
    watcher: delivery.JetStreamWatcher | None,
    windows: list[tuple[str, float, float]],
    log: Any,
) -> dict[str, Any]:
    """Delivery lag of the events of the closed-loop runs, then webhook throughput."""
    out: dict[str, Any] = {}
    app = application(stack)
    end = app.recorder.max_notification_id() or 0
    app.close()
    delivery.wait_until(lambda: delivery.reached(receiver.arrivals("/lag"), end), 120)
    out["webhook_lag"] = delivery.lags(receiver.arrivals("/lag"), windows)
    log(f"  webhook lag: {out['webhook_lag']}")
    if watcher is not None:
        delivery.wait_until(lambda: delivery.reached(watcher.received, end), 120)
        watcher.stop()
        out["jetstream_lag"] = delivery.lags(watcher.received, windows)
        log(f"  JetStream lag: {out['jetstream_lag']}")
    service = internal_headers("service", "bench")
    concurrency = 8  # the delivery process's default DISPUTES_WEBHOOKS_CONCURRENCY

    def cpu() -> float:
        return stats(stack)["delivery"].cpu_seconds

    out["throughput"] = [
        delivery.throughput(stack.service_url, service, receiver, n, plan.delivery_seconds, cpu)
        for n in (1, concurrency)
    ]
    log(f"  webhook throughput: {out['throughput']}")
    return out


def measure_scale(url: str, plan: Plan, log: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"latency": {}}
    with running_stack(url) as stack:
        # Only the service: a projector or worker catching up on a million filled events
        # would take the cores the measurement needs.
        stack.stop("projector")
        stack.stop("worker")
        for stored in (1_000, plan.big_store):
            app = application(stack)
            refs = orders_for(f"scale{stored}", 600)  # enough for the run, < 1,000 events
            register_orders(app, refs)
            app.close()
            supply = CaseSupply(refs)
            out["fill_" + str(stored)] = scale.fill(url, stack.schema, stored)
            result = measured(
                stack,
                lambda s=supply: closed_loop(
                    stack.service_url, internal_headers, s, 1, plan.scale_seconds
                ),
            )
            out["latency"][str(stored)] = result
            log(f"  {stored:>9,} stored events: p50 {result['p50_ms']} ms, "
                f"p99 {result['p99_ms']} ms")  # fmt: skip
        out["feed_read"] = scale.feed_read(url, stack.schema)
        log(f"  feed read: {out['feed_read']}")
        out["rebuild"] = scale.rebuild(url, stack.schema, max_events=plan.rebuild_events)
        log(f"  rebuild: {out['rebuild']}")
    out["load_case"] = scale.load_case_times(url, sizes=plan.case_sizes)
    log(f"  load case: {out['load_case']}")
    return out


def measure_versus(url: str, plan: Plan, log: Any) -> dict[str, Any]:
    clients = tuple(c for c in plan.clients if c > 1)  # the closed loop's 8 and 32
    return versus.measure(
        url, clients=clients, passes=plan.versus_passes, seconds=plan.versus_seconds,
        processes=plan.service_processes, threads=versus.SERVICE_THREADS, log=log,
    )  # fmt: skip


def measure_merkle(url: str, plan: Plan, log: Any) -> dict[str, Any]:
    return merkle_log.measure(url, plan.merkle_events, plan.merkle_seconds, log)


def measure_limits(url: str, plan: Plan, log: Any) -> dict[str, Any]:
    clients, seconds = list(plan.clients), plan.limit_seconds
    out: dict[str, Any] = {
        "raw_psycopg": limits.measure_raw(url, clients, seconds),
        "raw_psycopg_locked": limits.measure_raw(url, clients, seconds, locked=True),
        "pgbench": limits.measure_pgbench(url, clients, seconds),
        "pgbench_locked": limits.measure_pgbench(url, clients, seconds, locked=True),
        "eventsourcing_save": limits.measure_eventsourcing_save(url, clients, seconds),
        "service_recorder_save": limits.measure_eventsourcing_save(
            url, clients, seconds, module="services.dispute.infrastructure.postgres"
        ),
    }
    for name, series in out.items():
        if series:
            log(f"  {name}: " + ", ".join(f"{c}: {r['per_s']}/s" for c, r in series.items()))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="every part, shorter (< 2 min)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--service-processes", type=int, default=None, help="DISPUTES_PROCESSES for the run"
    )
    parser.add_argument(
        "--parts", nargs="+", choices=("limits", "service", "peer", "scale", "merkle"),
        default=["limits", "service", "peer", "scale", "merkle"],
        help="measure only these parts",
    )  # fmt: skip
    args = parser.parse_args(argv)
    plan = Plan.quick() if args.quick else Plan.full()
    if args.service_processes:
        plan = replace(plan, service_processes=args.service_processes)
    url = database_url()

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    began = time.monotonic()
    results: dict[str, Any] = {
        "mode": plan.mode,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "plan": asdict(plan),
    }
    for part, measure in (
        ("limits", measure_limits),
        ("service", measure_service),
        ("peer", measure_versus),
        ("scale", measure_scale),
        ("merkle", measure_merkle),
    ):
        if part in args.parts:
            log(f"{part} ...")
            started = time.monotonic()
            results[part] = measure(url, plan, log)
            results.setdefault("seconds", {})[part] = round(time.monotonic() - started, 1)
    results["seconds"]["total"] = round(time.monotonic() - began, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / plan.mode
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = report.markdown(results)
    stem.with_suffix(".md").write_text(markdown)
    plotted = report.plot(results, stem.with_suffix(".png"))
    print(markdown)
    log(f"wrote {stem}.json, {stem}.md" + (f", {plotted}" if plotted else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
