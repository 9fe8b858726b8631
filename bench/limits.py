"""The floors under the dispute service's write path: what PostgreSQL and eventsourcing allow.

Each series runs at a list of concurrent clients (normally 1, 8 and 32) for --seconds per
point, each point in a fresh scratch schema of its own (dropped afterwards, also on errors):

* raw: the minimum one command must do, in ONE transaction with psycopg 3 (one connection
  per client thread, prepared statements, autocommit off): read one randomly picked case's
  events (SELECT ... WHERE originator_id = %s ORDER BY originator_version), append one
  ~400-byte event (INSERT ... RETURNING notification_id), COMMIT. The table is shaped
  exactly like eventsourcing's PostgreSQL application recorder's events table and is
  prefilled with 1,000 cases x 10 events. Versions of appended events come from a sequence
  starting above the prefilled range, so concurrent clients never conflict.
* raw locked: the same, plus `LOCK TABLE ... IN EXCLUSIVE MODE` before the insert, which is
  what eventsourcing's recorder takes on every write to keep its notification feed gapless.
* pgbench, pgbench locked: the same two transactions driven by pgbench (-M prepared), since
  Python client threads share one GIL; latencies come from pgbench's per-transaction log.
  The case id is computed server-side (md5(n)::uuid) and so is the state, since pgbench
  variables can only hold numbers.
* eventsourcing save: the library's own floor, the plain `eventsourcing.application.Application`
  on the library's own PostgreSQL persistence (one Application, one pool of as many
  connections as clients, shared by all client threads). Each operation triggers one event
  on the thread's own aggregate and saves it: one INSERT with the recorder's table LOCK and
  NOTIFY, but no read (the aggregate is held in memory).

Reported per point: operations (transactions) per second, p50/p99/p99.9/max latency, count
and errors. A script, not a test; from the repository root:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m bench.limits --seconds 5 --clients 1 8 32
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from psycopg import sql

from bench.common import database_url, latency_summary, persistence_env, scratch_schema

CASES = 1000
EVENTS_PER_CASE = 10
STATE_BYTES = 400
FIRST_APPENDED_VERSION = 1000  # above the prefilled 1..EVENTS_PER_CASE
WARMUP_SECONDS = 0.5
PGBENCH_WARMUP_TRANSACTIONS = 20  # per client, before the timed pgbench run
TOPIC = "bench.limits.Appended"  # no colon: pgbench would read ":Appended" as a variable
TABLE = "events"
VERSION_SEQUENCE = "appended_versions"

Series = dict[str, dict[str, Any]]


# --------------------------------------------------------------------------- shared setup


def case_id(n: int) -> uuid.UUID:
    """The id of prefilled case n (1..CASES): md5(n::text)::uuid, as the SQL computes it."""
    return uuid.UUID(hashlib.md5(str(n).encode()).hexdigest())


@contextmanager
def prefilled_schema(url: str, prefix: str = "limits") -> Iterator[str]:
    """A scratch schema with an eventsourcing-shaped events table of CASES x EVENTS_PER_CASE.

    The events of one case are interleaved with the others' (inserted version by version),
    as they are in a real feed. The schema is dropped afterwards.
    """
    with scratch_schema(url, prefix) as schema:
        ident = {
            "table": sql.Identifier(schema, TABLE),
            "index": sql.Identifier(f"{TABLE}_notification_id_idx"),
            "sequence": sql.Identifier(schema, VERSION_SEQUENCE),
        }
        statements = [
            # As eventsourcing.postgres.PostgresApplicationRecorder creates it.
            "CREATE TABLE {table} ("
            " originator_id uuid NOT NULL,"
            " originator_version bigint NOT NULL,"
            " topic text,"
            " state bytea,"
            " notification_id bigserial,"
            " PRIMARY KEY (originator_id, originator_version))"
            " WITH (autovacuum_enabled = true,"
            " autovacuum_vacuum_threshold = 100000000,"
            " autovacuum_vacuum_scale_factor = 0.5,"
            " autovacuum_analyze_threshold = 1000,"
            " autovacuum_analyze_scale_factor = 0.01)",
            "CREATE UNIQUE INDEX {index} ON {table} (notification_id ASC)",
            f"CREATE SEQUENCE {{sequence}} START {FIRST_APPENDED_VERSION}",
            "INSERT INTO {table} (originator_id, originator_version, topic, state)"
            " SELECT md5(c::text)::uuid, v, 'bench.limits.Prefilled',"
            f" decode(repeat('ab', {STATE_BYTES}), 'hex')"
            f" FROM generate_series(1, {EVENTS_PER_CASE}) AS v,"
            f" generate_series(1, {CASES}) AS c"
            " ORDER BY v, c",
            "VACUUM ANALYZE {table}",
        ]
        with psycopg.connect(url, autocommit=True) as conn:
            for statement in statements:
                conn.execute(sql.SQL(statement).format(**ident))
        yield schema


def _statements(schema: str) -> dict[str, sql.Composed]:
    table = sql.Identifier(schema, TABLE)
    return {
        "select": sql.SQL(
            "SELECT originator_version, topic, state FROM {} "
            "WHERE originator_id = %s ORDER BY originator_version"
        ).format(table),
        "lock": sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table),
        "insert": sql.SQL(
            "INSERT INTO {} (originator_id, originator_version, topic, state) "
            "VALUES (%s, nextval({}), %s, %s) RETURNING notification_id"
        ).format(table, sql.Literal(f'"{schema}"."{VERSION_SEQUENCE}"')),
    }


# --------------------------------------------------------------------------- the driver


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None


def _drive(
    ops: Sequence[Callable[[], None]],
    recover: Sequence[Callable[[], None]],
    seconds: float,
    warmup: float = WARMUP_SECONDS,
) -> dict[str, Any]:
    """Loop ops[i] in thread i: `warmup` seconds untimed, then `seconds` timed.

    An operation counts if it starts inside the timed window; so per_s = count / seconds.
    A failing operation counts as an error, and recover[i] runs before the next.
    """
    start = time.perf_counter()
    timed_from = start + warmup
    until = timed_from + seconds
    tallies = [_Tally() for _ in ops]
    stop = threading.Event()  # set on Ctrl-C, so the clients let go of their connections

    def client(op: Callable[[], None], fix: Callable[[], None], tally: _Tally) -> None:
        while True:
            began = time.perf_counter()
            if began >= until or stop.is_set():
                return
            try:
                op()
            except Exception as e:
                if began >= timed_from:
                    tally.errors += 1
                    tally.first_error = tally.first_error or repr(e)
                try:
                    fix()
                except Exception as again:
                    tally.first_error = tally.first_error or repr(again)
                time.sleep(0.01)
                continue
            if began >= timed_from:
                tally.latencies.append(time.perf_counter() - began)

    threads = [
        threading.Thread(target=client, args=args, name=f"limits-client-{i}", daemon=True)
        for i, args in enumerate(zip(ops, recover, tallies, strict=True))
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    except BaseException:
        stop.set()
        for thread in threads:
            if thread.ident is not None:
                thread.join(timeout=10)
        raise

    latencies = [lat for tally in tallies for lat in tally.latencies]
    errors = sum(tally.errors for tally in tallies)
    first_errors = {tally.first_error for tally in tallies if tally.first_error}
    for message in sorted(first_errors)[:3]:
        print(f"limits: error during the run: {message}", file=sys.stderr)
    return {
        "per_s": round(len(latencies) / seconds, 1),
        "count": len(latencies),
        "errors": errors,
        **latency_summary(latencies),
    }


# --------------------------------------------------------------------------- 1. raw psycopg


class _RawClient:
    """One connection; each op reads a random case and appends one event in one transaction."""

    def __init__(self, url: str, schema: str, *, locked: bool, seed: int) -> None:
        self.url = url
        self.locked = locked
        self.rng = random.Random(seed)
        self.statements = _statements(schema)
        self.cases = [case_id(n) for n in range(1, CASES + 1)]
        self.state = random.Random(seed).randbytes(STATE_BYTES)
        self.conn: psycopg.Connection[Any] = psycopg.connect(url, autocommit=False)

    def op(self) -> None:
        case = self.cases[self.rng.randrange(CASES)]
        with self.conn.cursor() as cur:
            cur.execute(self.statements["select"], (case,), prepare=True)
            cur.fetchall()
            if self.locked:
                cur.execute(self.statements["lock"], prepare=True)
            cur.execute(self.statements["insert"], (case, TOPIC, self.state), prepare=True)
            if cur.fetchone() is None:
                raise RuntimeError("INSERT ... RETURNING returned no row")
        self.conn.commit()

    def recover(self) -> None:
        if self.conn.closed:
            self.conn = psycopg.connect(self.url, autocommit=False)
        else:
            self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


def measure_raw(
    url: str, clients: Sequence[int], seconds: float, *, locked: bool = False
) -> Series:
    """Read-one-case + append-one-event transactions/s with psycopg, per client count."""
    results: Series = {}
    for n in clients:
        with prefilled_schema(url, "limits_raw") as schema, ExitStack() as stack:
            drivers: list[_RawClient] = []
            for i in range(n):
                driver = _RawClient(url, schema, locked=locked, seed=i)
                stack.callback(driver.close)
                drivers.append(driver)
            results[str(n)] = _drive([d.op for d in drivers], [d.recover for d in drivers], seconds)
    return results


# --------------------------------------------------------------------------- 2. pgbench


def pgbench_script(schema: str, *, locked: bool) -> str:
    """The raw transaction as a pgbench script; each variable used once per statement."""
    table = f'"{schema}"."{TABLE}"'
    sequence = f'"{schema}"."{VERSION_SEQUENCE}"'
    lock = f"LOCK TABLE {table} IN EXCLUSIVE MODE;\n" if locked else ""
    return (
        f"\\set c random(1, {CASES})\n"
        "BEGIN;\n"
        f"SELECT originator_version, topic, state FROM {table} "
        "WHERE originator_id = md5(:c::text)::uuid ORDER BY originator_version;\n"
        f"{lock}"
        f"INSERT INTO {table} (originator_id, originator_version, topic, state) "
        f"VALUES (md5(:c::text)::uuid, nextval('{sequence}'), '{TOPIC}', "
        f"decode(repeat('ab', {STATE_BYTES}), 'hex')) RETURNING notification_id;\n"
        "END;\n"
    )


def _run_pgbench(exe: str, url: str, script: Path, clients: int, *extra: str) -> str:
    command = [exe, "-n", "-M", "prepared", "-f", str(script), "-c", str(clients)]
    command += ["-j", str(min(clients, 2)), *extra, url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if not re.search(r"^tps = ", done.stdout, re.MULTILINE):
        raise RuntimeError(f"pgbench failed ({done.returncode}): {done.stderr.strip()}")
    aborted = len(re.findall(r"client \d+ aborted", done.stderr))
    if aborted:
        print(f"limits: pgbench: {aborted} client(s) aborted: {done.stderr[:300]}", file=sys.stderr)
    return done.stdout + f"\naborted clients: {aborted}\n"


def measure_pgbench(
    url: str, clients: Sequence[int], seconds: float, *, locked: bool = False
) -> Series | None:
    """The raw transaction driven by pgbench; None if pgbench is not installed.

    pgbench's -T takes whole seconds, so `seconds` is rounded (to at least 1).
    """
    exe = shutil.which("pgbench")
    if exe is None:
        return None
    duration = max(1, round(seconds))
    results: Series = {}
    for n in clients:
        with (
            prefilled_schema(url, "limits_pgbench") as schema,
            tempfile.TemporaryDirectory(prefix="bench-limits-") as tmp,
        ):
            script = Path(tmp) / "append.sql"
            script.write_text(pgbench_script(schema, locked=locked))
            _run_pgbench(exe, url, script, n, "-t", str(PGBENCH_WARMUP_TRANSACTIONS))
            log_prefix = Path(tmp) / "pgbench_log"
            out = _run_pgbench(
                exe, url, script, n, "-T", str(duration), "-l", f"--log-prefix={log_prefix}"
            )
            latencies: list[float] = []
            for log in Path(tmp).glob("pgbench_log.*"):
                for line in log.read_text().splitlines():
                    fields = line.split()
                    # client_id transaction_no time script_no epoch us: time in µs, or
                    # "failed"/"skipped" (counted in pgbench's own summary below).
                    if len(fields) >= 3 and fields[2].isdigit():
                        latencies.append(int(fields[2]) / 1_000_000)
            tps = re.search(r"^tps = ([0-9.]+)", out, re.MULTILINE)
            failed = re.search(r"number of failed transactions: (\d+)", out)
            aborted = re.search(r"aborted clients: (\d+)", out)
            results[str(n)] = {
                "per_s": round(float(tps.group(1)), 1) if tps else math.nan,
                "count": len(latencies),
                "errors": (int(failed.group(1)) if failed else 0)
                + (int(aborted.group(1)) if aborted else 0),
                **latency_summary(latencies),
            }
    return results


# --------------------------------------------------------------------------- 3. eventsourcing


NOTE = "n" * 300  # with the JSON envelope, about STATE_BYTES of stored state per event


class Notebook(Aggregate):
    """One client's aggregate: every save appends one Noted event."""

    def __init__(self) -> None:
        self.notes = 0

    @event("Noted")
    def note(self, text: str) -> None:
        self.notes += 1


def _save_one_event(app: Application[uuid.UUID], aggregate: Notebook) -> Callable[[], None]:
    def op() -> None:
        aggregate.note(NOTE)
        app.save(aggregate)

    return op


def measure_eventsourcing_save(
    url: str,
    clients: Sequence[int],
    seconds: float,
    *,
    module: str = "eventsourcing.postgres",
) -> Series:
    """Application.save() of one new event per call, per client count: on the library's own
    recorder, or (`module="services.dispute.infrastructure.postgres"`) on this service's,
    which also writes the hash chain and does it in one statement."""
    results: Series = {}
    for n in clients:
        with scratch_schema(url, "limits_es") as schema:
            env = {
                **persistence_env(url, schema, pool_size=n),
                "PERSISTENCE_MODULE": module,
                "POSTGRES_MAX_OVERFLOW": "0",
                "CREATE_TABLE": "y",
            }
            app: Application[uuid.UUID] = Application(env=env)
            try:
                aggregates = [Notebook() for _ in range(n)]
                app.save(*aggregates)
                ops = [_save_one_event(app, aggregate) for aggregate in aggregates]
                results[str(n)] = _drive(ops, [lambda: None] * n, seconds)
            finally:
                app.close()
    return results


# --------------------------------------------------------------------------- main


def _row(series: str, clients: str, r: dict[str, Any]) -> str:
    cells = [series, clients, f"{r['per_s']:.1f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}"]
    cells += [f"{r['p999_ms']:.2f}", f"{r['max_ms']:.2f}", str(r["count"]), str(r["errors"])]
    return "| " + " | ".join(cells) + " |"


def markdown_table(all_series: dict[str, Series | None]) -> str:
    lines = [
        "| series | clients | per s | p50 ms | p99 ms | p99.9 ms | max ms | count | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, series in all_series.items():
        if series is None:
            lines.append(f"| {name} | (not available) | | | | | | | |")
            continue
        lines += [_row(name, clients, r) for clients, r in series.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per point")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args(argv)
    url = database_url()
    clients: list[int] = args.clients
    seconds: float = args.seconds

    runs: list[tuple[str, Callable[[], Series | None]]] = [
        ("raw", lambda: measure_raw(url, clients, seconds)),
        ("raw locked", lambda: measure_raw(url, clients, seconds, locked=True)),
        ("pgbench", lambda: measure_pgbench(url, clients, seconds)),
        ("pgbench locked", lambda: measure_pgbench(url, clients, seconds, locked=True)),
        ("eventsourcing save", lambda: measure_eventsourcing_save(url, clients, seconds)),
        (
            "service recorder save",
            lambda: measure_eventsourcing_save(
                url, clients, seconds, module="services.dispute.infrastructure.postgres"
            ),
        ),
    ]
    all_series: dict[str, Series | None] = {}
    for name, run in runs:
        print(f"limits: {name} at {clients} clients, {seconds:g} s each", file=sys.stderr)
        all_series[name] = run()
    print(markdown_table(all_series))


if __name__ == "__main__":
    main()
