"""Scale: the dispute service's event store with a million events, on PostgreSQL.

Measures:

* fill: how fast a schema's events table can be brought up to N events. A few hundred real
  dispute histories are driven through the domain's own commands and saved by the
  application (`bench.projection_rebuild.one_dispute`: order registered, dispute opened,
  rejected, revised, offer made and accepted, refund paid; 8 events with the order's),
  then multiplied server-side with `INSERT ... SELECT` in ~100k-row statements. Each copy
  is a whole, consistent history of its own: a new order reference (`<template ref>.<run
  tag>.<n>`), with the order's and the dispute's ids derived from it as the domain derives
  them, the reference and the dispute id rewritten inside the stored state (the only
  places the state names them: eventsourcing stores neither the originator id nor the
  version in the state), and its tamper-evidence hash chain computed from the stored rows
  (`services.dispute.audit`: sha256 over the canonical encoding, by a window aggregate).
  Copies are loadable aggregates and fold in the projector like the originals; they share
  their template's timestamps, actors and amounts.
* feed read: the whole global event feed read in pages with the recorder's
  `select_notifications`, as the projector and the deadline worker read it.
* rebuild: the dashboard projections rebuilt from zero (`Projector.rebuild`), optionally
  stopped after a number of events (the projector is much slower than the rest), into
  views of a scratch schema of their own (the schema's own views are left alone unless
  `in_place`). Checks the summary view has one row per dispute.
* case load: `repository.get` of one Dispute with 10 and with 10,000 events (the opening
  and messages), with the application's snapshots (every 50 events) and without any (a
  second application on the same schema with snapshotting switched off: every event is
  replayed from version 1).

A script, not a test; from the repository root:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m bench.scale [--events 200000] [--rebuild-events N] [--quick]

Every schema it creates is dropped at the end, also on errors. `fill`, `feed_read` and
`rebuild` also work on an existing schema (e.g. one a running dispute service uses): fill
takes the recorder's table lock for each statement, so the feed stays in commit order
while the service writes (its writes wait up to ~2 s per statement). A projector following
that schema then has all the added events to fold, at the projector's pace, competing for
the CPU with whatever is measured next.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.utils import get_topic
from psycopg import sql

from bench.common import database_url, latency_summary, persistence_env, scratch_schema
from bench.projection_rebuild import one_dispute
from services.dispute.application import DisputeApplication
from services.dispute.domain import Dispute, Order, OrderFacts, dispute_id, order_id
from services.dispute.domain.values import Actor, Context, Role
from services.dispute.projections import Projector, views_of
from services.dispute.projections.read_models import SUMMARY_TABLE
from shared.clock import FixedClock
from shared.money import Money

Progress = Callable[[int, int], None]  # (events stored so far, target)

START = datetime(2026, 1, 5, 9, tzinfo=UTC)
OPENED_TOPIC = get_topic(Dispute.Opened)
TEMPLATES = 400
CHUNK_EVENTS = 100_000
SAVE_DISPUTES = 250  # template disputes (with their orders) per save
HASH_PREFIX = len(str(UUID(int=0))).to_bytes(8, "big")  # canonical(): length of the id text


def _app(
    url: str, schema: str, *, snapshots: bool = True, pool_size: int = 2
) -> DisputeApplication:
    """An in-process application on `schema`; constructing it creates missing tables."""
    env = persistence_env(url, schema, pool_size=pool_size)
    if not snapshots:
        # The class sets snapshotting_intervals, which switches snapshotting on unless the
        # environment says otherwise; the application's own prefix wins over the bare key.
        env |= {"IS_SNAPSHOTTING_ENABLED": "n", "DISPUTES_IS_SNAPSHOTTING_ENABLED": "n"}
    app = DisputeApplication(env=env, clock=FixedClock(START))
    if app.repository.cache is not None:
        app.close()
        raise RuntimeError("an aggregate cache is configured: loads would not be measured")
    return app


def _table(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(name))


def _count(conn: psycopg.Connection[Any], table: sql.Composable) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    return int(row[0]) if row else 0


def _rate(events: int, seconds: float) -> float:
    return round(events / seconds) if seconds > 0 else float("inf")


# Fill ------------------------------------------------------------------------------------


def lone_order(app: DisputeApplication, n: int, at: datetime) -> Order:
    """An order registered and never disputed: one event, to hit a target count exactly."""
    facts = OrderFacts.parse(
        buyer_id=f"b{n % 997}",
        seller_id=f"s{n % 101}",
        amount=Money(1000 + n % 5000, "USD"),
        payment_method="card",
        placed_at=at - timedelta(days=3),
    )
    ctx = Context(actor=Actor(Role.SERVICE, "orders"), at=at, correlation_id=f"r{n}")
    return Order.register(ctx, f"order-{n}", facts, app.policy)


def _save_templates(app: DisputeApplication, base: int, count: int) -> list[tuple[str, UUID, UUID]]:
    """`count` disputes through the domain; (order ref, order id, dispute id) of each."""
    made: list[tuple[str, UUID, UUID]] = []
    pending: list[Order | Dispute] = []
    for i in range(count):
        order, dispute = one_dispute(app, base + i, START + timedelta(minutes=7 * i))
        made.append((order.order_ref, order.id, dispute.id))
        pending += (order, dispute)
        if len(pending) >= 2 * SAVE_DISPUTES:
            app.save(*pending)
            pending = []
    if pending:
        app.save(*pending)
    return made


def _split(state: bytes, needle: bytes, where: str) -> tuple[bytes, bytes]:
    if state.count(needle) != 1:
        raise RuntimeError(f"expected {needle!r} once in the stored state of {where}")
    pre, post = state.split(needle)
    return pre, post


def fill(
    url: str,
    schema: str,
    total_events: int,
    *,
    templates: int = TEMPLATES,
    chunk_events: int = CHUNK_EVENTS,
    hashes: bool = True,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Brings the events table of the dispute service in `schema` up to `total_events`.

    Templates (real disputes through the domain) are saved by the application, then
    copied by SQL, each copy a consistent history of its own (see the module docstring).
    What cannot be a whole dispute (fewer than 8 events) is made of lone orders. With
    `hashes`, each copy's hash chain is computed (and would verify); without, copies have
    none. Returns the final count and the time taken (ANALYZE included).
    """
    began = time.perf_counter()
    app = _app(url, schema)  # creates the tables if the service has not
    try:
        events_name = app.recorder.events_table_name
        events = _table(schema, events_name)
        hash_table = _table(schema, f"{events_name}_hashes")
        with psycopg.connect(url, autocommit=True) as conn:
            before = _count(conn, events)
            need = max(0, total_events - before)
            per_dispute = 8  # one_dispute: the order's 2 events and the dispute's 6
            n_templates = min(templates, need // per_dispute)
            copies = (need - n_templates * per_dispute) // per_dispute
            lone = need - (n_templates + copies) * per_dispute
            base = secrets.randbelow(10**12)  # order refs order-<base + i>: new ones
            made = _save_templates(app, base, n_templates)
            if copies:
                done_before = before + n_templates * per_dispute
                _copy_templates(
                    conn, events, hash_table, made, copies, secrets.token_hex(3),
                    chunk_events, hashes,
                    lambda done: progress(done_before + done, total_events) if progress else None,
                )  # fmt: skip
            if lone:
                at = START + timedelta(minutes=7 * n_templates)
                app.save(*(lone_order(app, base + n_templates + j, at) for j in range(lone)))
            analyze_s = 0.0
            if need:
                analyze_began = time.perf_counter()
                conn.execute(sql.SQL("ANALYZE {}").format(events))
                conn.execute(sql.SQL("ANALYZE {}").format(hash_table))
                analyze_s = time.perf_counter() - analyze_began
            after = _count(conn, events)
    finally:
        app.close()
    seconds = time.perf_counter() - began
    if progress and need:
        progress(after, total_events)
    return {
        "events": after,
        "added": after - before,
        "templates": n_templates,
        "copies": copies,
        "lone_orders": lone,
        "hashes": hashes,
        "seconds": round(seconds, 2),
        "analyze_s": round(analyze_s, 2),
        "events_per_s": _rate(after - before, seconds),
    }


def _copy_templates(
    conn: psycopg.Connection[Any],
    events: sql.Composed,
    hash_table: sql.Composed,
    made: Sequence[tuple[str, UUID, UUID]],
    copies: int,
    tag: str,
    chunk_events: int,
    hashes: bool,
    progress: Callable[[int], None],
) -> None:
    """Inserts `copies` disputes (with their orders), copy k made from template k % len."""
    role: dict[UUID, tuple[int, bool]] = {}  # originator id -> (template, is the order)
    for t, (_ref, oid, did) in enumerate(made):
        role[oid], role[did] = (t, True), (t, False)
    rows = conn.execute(
        sql.SQL(
            "SELECT originator_id, originator_version, topic, state FROM {} "
            "WHERE originator_id = ANY(%s) ORDER BY notification_id"
        ).format(events),
        [list(role)],
    ).fetchall()
    template_rows: list[tuple[Any, ...]] = []
    seq: dict[int, int] = {}
    for originator_id, version, topic, raw in rows:
        t, is_order = role[originator_id]
        ref, _oid, did = made[t]
        state = bytes(raw)
        ref_json, did_json = f'"order_ref":"{ref}"'.encode(), f'"dispute_id":"{did}"'.encode()
        kind, pre, post = 0, b"", b""
        if ref_json in state and did_json in state:
            raise RuntimeError(f"both the order ref and the dispute id in the state of {topic}")
        if ref_json in state:  # Order.Registered, Dispute.Opened
            kind, (pre, post) = 1, _split(state, ref_json, topic)
            pre += b'"order_ref":"'
            post = b'"' + post
        elif did_json in state:  # Order.DisputeOpened
            kind, (pre, post) = 2, _split(state, did_json, topic)
            pre += b'"dispute_id":"'
            post = b'"' + post
        seq[t] = seq.get(t, 0) + 1
        template_rows.append((t, seq[t], is_order, version, topic, kind, state, pre, post))
    per_dispute = len(template_rows) // len(made)
    if any(n != per_dispute for n in seq.values()):
        raise RuntimeError("templates of different lengths: copies would miss the target")

    conn.execute(
        "CREATE TEMP TABLE scale_tpl (tpl int, seq int, is_order bool, version bigint, "
        "topic text, kind int, state bytea, pre bytea, post bytea)"
    )
    conn.execute(
        "CREATE TEMP TABLE scale_map (k int PRIMARY KEY, tpl int, order_ref text, "
        "order_id uuid, dispute_id uuid)"
    )
    with conn.cursor() as curs:
        with curs.copy("COPY scale_tpl FROM STDIN") as copy:
            copy.set_types(
                ["int4", "int4", "bool", "int8", "text", "int4", "bytea", "bytea", "bytea"]
            )
            for row in template_rows:
                copy.write_row(row)
        with curs.copy("COPY scale_map FROM STDIN") as copy:
            copy.set_types(["int4", "int4", "text", "uuid", "uuid"])
            for k in range(copies):
                t = k % len(made)
                ref = f"{made[t][0]}.{tag}.{k}"
                copy.write_row((k, t, ref, order_id(ref), dispute_id(ref)))
    conn.execute("ANALYZE scale_tpl")
    conn.execute("ANALYZE scale_map")
    if hashes:
        # hash_n = sha256(hash_{n-1} || canonical(event_n)), from 32 zero bytes: a running
        # aggregate over each copy's events (services.dispute.audit.chain).
        conn.execute(
            "CREATE FUNCTION pg_temp.scale_link(bytea, bytea) RETURNS bytea "
            "LANGUAGE plpgsql IMMUTABLE STRICT AS 'BEGIN RETURN sha256($1 || $2); END'"
        )
        conn.execute(
            "CREATE AGGREGATE pg_temp.scale_chain(bytea) (sfunc = pg_temp.scale_link, "
            f"stype = bytea, initcond = '\\x{bytes(32).hex()}')"
        )
    insert_events = sql.SQL(
        "INSERT INTO {events} (originator_id, originator_version, topic, state) "
        "SELECT CASE WHEN t.is_order THEN m.order_id ELSE m.dispute_id END, t.version, t.topic, "
        "CASE t.kind WHEN 1 THEN t.pre || convert_to(m.order_ref, 'UTF8') || t.post "
        "WHEN 2 THEN t.pre || convert_to(m.dispute_id::text, 'UTF8') || t.post "
        "ELSE t.state END "
        "FROM scale_map m JOIN scale_tpl t ON t.tpl = m.tpl WHERE m.k >= %s AND m.k < %s "
        "ORDER BY m.k, t.seq"  # the notification ids follow: each copy in version order
    ).format(events=events)
    insert_hashes = sql.SQL(
        "INSERT INTO {hashes} (originator_id, originator_version, hash) "
        "SELECT originator_id, originator_version, pg_temp.scale_chain("
        "{prefix} || convert_to(originator_id::text, 'UTF8') "
        "|| int8send(octet_length(originator_version::text)) "
        "|| convert_to(originator_version::text, 'UTF8') "
        "|| int8send(octet_length(convert_to(topic, 'UTF8'))) || convert_to(topic, 'UTF8') "
        "|| int8send(octet_length(state)) || state"
        ") OVER (PARTITION BY originator_id ORDER BY originator_version) "
        "FROM {events} WHERE notification_id > %s"
    ).format(hashes=hash_table, events=events, prefix=sql.Literal(HASH_PREFIX))
    per_chunk = max(1, chunk_events // per_dispute)
    for lo in range(0, copies, per_chunk):
        hi = min(copies, lo + per_chunk)
        with conn.transaction():
            conn.execute("SET LOCAL work_mem = '256MB'")
            # The recorder's lock: notification ids are taken in commit order.
            conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(events))
            row = conn.execute(
                sql.SQL("SELECT coalesce(max(notification_id), 0) FROM {}").format(events)
            ).fetchone()
            last = int(row[0]) if row else 0
            conn.execute(insert_events, [lo, hi])
            if hashes:
                conn.execute(insert_hashes, [last])
        progress(hi * per_dispute)
    conn.execute("DROP TABLE scale_tpl, scale_map")


# Feed read -------------------------------------------------------------------------------


def feed_read(url: str, schema: str, *, page: int = 1000) -> dict[str, Any]:
    """Reads the whole feed with `select_notifications`, page by page, as the projector."""
    app = _app(url, schema)
    try:
        began = time.perf_counter()
        count = out_of_order = pages = 0
        position: int | None = None
        while True:
            notifications = app.recorder.select_notifications(
                start=position, limit=page, inclusive_of_start=position is None
            )
            if not notifications:
                break
            pages += 1
            for notification in notifications:
                if position is not None and notification.id <= position:
                    out_of_order += 1
                position = notification.id
            count += len(notifications)
        seconds = time.perf_counter() - began
    finally:
        app.close()
    return {
        "events": count,
        "pages": pages,
        "page": page,
        "seconds": round(seconds, 2),
        "events_per_s": _rate(count, seconds),
        "ids_strictly_increasing": out_of_order == 0,
        "ids_out_of_order": out_of_order,
    }


# Rebuild ---------------------------------------------------------------------------------


def rebuild(
    url: str,
    schema: str,
    *,
    max_events: int | None = None,
    batch_size: int = 1000,
    in_place: bool = False,
) -> dict[str, Any]:
    """Rebuilds the dashboard views from zero from the events in `schema`; with
    `max_events`, stops after the batch that reaches it (the views then hold the feed up
    to that point, consistently).

    By default the views are built in a scratch schema of their own (dropped afterwards):
    the schema's own views, and a projector process that may be following them (a running
    stack's), are left alone, so the two never race for batches. With `in_place`, the
    schema's own views are emptied and rebuilt (a projector following them would share
    the work, and the figure). Checks that the summary view has one row per dispute
    opened in the events processed.
    """
    app = _app(url, schema)
    try:
        if in_place:
            return _rebuild(url, app, schema, schema, max_events, batch_size)
        with scratch_schema(url, "scale_views") as views_schema:
            return _rebuild(url, app, schema, views_schema, max_events, batch_size)
    finally:
        app.close()


def _rebuild(
    url: str,
    app: DisputeApplication,
    schema: str,
    views_schema: str,
    max_events: int | None,
    batch_size: int,
) -> dict[str, Any]:
    # The views live in the datastore they are constructed on; they read the feed through
    # the projector's application, whichever schema that is in.
    # only for its datastore (and its tables)
    holder = app if views_schema == schema else _app(url, views_schema)
    try:
        projector = Projector(app, views_of(holder), batch_size=batch_size)
        views = projector.views
        if max_events is None:
            report = projector.rebuild()
            processed, seconds = report.events, report.seconds
        else:
            # Projector.rebuild has no limit: the same steps (empty each view and its
            # position, then batches from zero) with one.
            began = time.perf_counter()
            for view in views.values():
                view.clear(app.name)
            total = 0
            while total < max_events * len(views) and (n := projector.run_once()):
                total += n
            processed, seconds = total // len(views), time.perf_counter() - began
        positions = {view.max_tracking_id(app.name) for view in views.values()}
    finally:
        if holder is not app:
            holder.close()
    position = max(p or 0 for p in positions)
    events = _table(schema, app.recorder.events_table_name)
    with psycopg.connect(url, autocommit=True) as conn:
        opened = conn.execute(
            sql.SQL("SELECT count(*) FROM {} WHERE notification_id <= %s AND topic = %s").format(
                events
            ),
            [position, OPENED_TOPIC],
        ).fetchone()
        states = conn.execute(
            sql.SQL("SELECT state, count(*) FROM {} GROUP BY state ORDER BY state").format(
                _table(views_schema, SUMMARY_TABLE)
            )
        ).fetchall()
    disputes = int(opened[0]) if opened else 0
    rows = sum(int(n) for _state, n in states)
    return {
        "events": processed,
        "seconds": round(seconds, 2),
        "events_per_s": _rate(processed, seconds),
        "batch_size": batch_size,
        "in_place": views_schema == schema,
        "position": position,
        "views_at_same_position": len(positions) == 1,
        "disputes": disputes,
        "summary_rows": rows,
        "summary_rows_match": rows == disputes,
        "summary_states": {str(state): int(n) for state, n in states},
    }


# Case loads ------------------------------------------------------------------------------


def _build_case(app: DisputeApplication, n: int, events: int, per_save: int = 500) -> Dispute:
    """A dispute with `events` events: opened, then messages from both parties."""
    buyer, seller = Actor(Role.BUYER, f"b{n}"), Actor(Role.SELLER, f"s{n}")
    facts = OrderFacts.parse(
        buyer_id=buyer.id,
        seller_id=seller.id,
        amount=Money(5000, "USD"),
        payment_method="card",
        placed_at=START - timedelta(days=3),
    )
    service = Actor(Role.SERVICE, "orders")
    order = Order.register(Context(service, START, f"c{n}"), f"case-{n}", facts, app.policy)
    dispute = Dispute.open(
        Context(buyer, START, f"c{n}"),
        order,
        reason="not_received",
        requested_resolution="refund_only",
        amount=Money(5000, "USD"),
        description="a long conversation",
        evidence=[],
        policy=app.policy,
    )
    app.save(order, dispute)
    for i in range(1, events):
        actor = buyer if i % 2 else seller
        at = START + timedelta(seconds=i)
        dispute.post_message(Context(actor, at, f"c{n}-{i}"), body=f"message {i} of the case")
        if i % per_save == 0:
            app.save(dispute)
    app.save(dispute)
    if dispute.version != events:
        raise RuntimeError(f"case has {dispute.version} events, not {events}")
    return dispute


def _time_loads(
    app: DisputeApplication, case: UUID, version: int, repeats: int, budget_s: float
) -> dict[str, float]:
    """Loads the case until `repeats` loads or `budget_s` (at least 5 loads), after one
    untimed load."""
    loaded = app.repository.get(case)
    if loaded.version != version:
        raise RuntimeError(f"loaded version {loaded.version}, not {version}")
    seconds: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(seconds) < repeats and (len(seconds) < 5 or time.perf_counter() < deadline):
        began = time.perf_counter()
        app.repository.get(case)
        seconds.append(time.perf_counter() - began)
    return {**latency_summary(seconds), "n": len(seconds)}


def _time_kept_loads(
    app: DisputeApplication, case: UUID, version: int, repeats: int, budget_s: float
) -> dict[str, float]:
    """As `_time_loads`, through the service's own read (`get_dispute`): the copy the
    process keeps (services.dispute.latest), brought up to date with one statement."""
    reader = Actor(Role.AGENT, "bench")
    if app.get_dispute(reader, case).version != version:
        raise RuntimeError("the kept copy is not at the case's version")
    seconds: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(seconds) < repeats and (len(seconds) < 5 or time.perf_counter() < deadline):
        began = time.perf_counter()
        app.get_dispute(reader, case)
        seconds.append(time.perf_counter() - began)
    return {**latency_summary(seconds), "n": len(seconds)}


def load_case_times(
    url: str,
    *,
    sizes: Sequence[int] = (10, 10_000),
    repeats: int = 1000,
    budget_s: float = 3.0,
) -> dict[str, Any]:
    """Milliseconds to load one Dispute of each size (events) with and without snapshots.

    In a scratch schema of its own. Each case is built through the domain (opened, then
    messages: the domain sets no limit on them) by an application that snapshots every
    50 events, as the service does; it is loaded by that application and by one on the
    same schema with snapshotting switched off. Per size and variant: p50/p99/p99.9/max
    of up to `repeats` loads (fewer when `budget_s` runs out, never fewer than 5), the
    events replayed per load, and for the case the snapshots stored and their sizes.

    Building the big case is the slow part (~15 s for 10,000 events): each snapshot holds
    the whole case (every message so far), so every 50th event writes a bigger one, and
    the snapshots of one case add up quadratically (~140 MB for 10,000 messages).
    """
    results: dict[str, Any] = {}
    with scratch_schema(url, "scale_load") as schema:
        app = _app(url, schema)
        plain = _app(url, schema, snapshots=False)
        try:
            if app.snapshots is None or plain.snapshots is not None:
                raise RuntimeError("snapshotting is not on and off as intended")
            if plain.repository.snapshot_store is not None:
                raise RuntimeError("the no-snapshot application would read snapshots")
            snapshots = _table(schema, app.snapshots.recorder.events_table_name)
            for n, size in enumerate(sizes):
                began = time.perf_counter()
                case = _build_case(app, n, size)
                built_s = time.perf_counter() - began
                with psycopg.connect(url, autocommit=True) as conn:
                    row = conn.execute(
                        sql.SQL(
                            "SELECT count(*), coalesce(max(originator_version), 0), "
                            "coalesce(sum(octet_length(state)), 0), "
                            "coalesce(max(octet_length(state)), 0) "
                            "FROM {} WHERE originator_id = %s"
                        ).format(snapshots),
                        [case.id],
                    ).fetchone()
                count, latest, total_bytes, largest = row if row else (0, 0, 0, 0)
                with_snapshots = _time_loads(app, case.id, size, repeats, budget_s)
                without = _time_loads(plain, case.id, size, repeats, budget_s)
                kept = _time_kept_loads(app, case.id, size, repeats, budget_s)
                results[str(size)] = {
                    "build_s": round(built_s, 2),
                    "snapshots": {
                        **with_snapshots,
                        "snapshot_rows": int(count),
                        "latest_snapshot_version": int(latest),
                        "latest_snapshot_bytes": int(largest),
                        "snapshot_bytes_total": int(total_bytes),
                        "events_replayed": size - int(latest),
                    },
                    "no_snapshots": {**without, "events_replayed": size},
                    "kept": {**kept, "events_replayed": 0},
                }
        finally:
            app.close()
            plain.close()
    return results


# Report ----------------------------------------------------------------------------------


def _print_report(
    filled: Mapping[str, Any],
    feed: Mapping[str, Any],
    rebuilt: Mapping[str, Any],
    loads: Mapping[str, Any],
) -> None:
    print("| step | events | seconds | events/s | notes |")
    print("|---|---:|---:|---:|---|")
    print(
        f"| fill | {filled['added']:,} (to {filled['events']:,}) | {filled['seconds']} | "
        f"{filled['events_per_s']:,} | {filled.get('templates', 0)} templates through the "
        f"domain, {filled.get('copies', 0):,} copied disputes, hash chains "
        f"{'computed' if filled.get('hashes') else 'skipped'}, ANALYZE "
        f"{filled.get('analyze_s', 0)} s |"
    )
    print(
        f"| feed read | {feed['events']:,} | {feed['seconds']} | {feed['events_per_s']:,} | "
        f"{feed['pages']:,} pages of {feed['page']}, ids strictly increasing: "
        f"{feed['ids_strictly_increasing']} |"
    )
    print(
        f"| rebuild | {rebuilt['events']:,} | {rebuilt['seconds']} | "
        f"{rebuilt['events_per_s']:,} | batch {rebuilt['batch_size']}, summary rows "
        f"{rebuilt['summary_rows']:,} = disputes {rebuilt['disputes']:,}: "
        f"{rebuilt['summary_rows_match']}, states {rebuilt['summary_states']} |"
    )
    print()
    print(
        "| case events | snapshots | p50 ms | p99 ms | max ms | loads | events replayed | notes |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    for size, result in loads.items():
        for variant in ("snapshots", "no_snapshots"):
            r = result[variant]
            notes = (
                f"{r['snapshot_rows']} snapshots stored, latest at v{r['latest_snapshot_version']}"
                f" ({r['latest_snapshot_bytes']:,} B; {r['snapshot_bytes_total']:,} B in all)"
                if variant == "snapshots"
                else f"case built in {result['build_s']} s"
            )
            print(
                f"| {int(size):,} | {'yes' if variant == 'snapshots' else 'no'} | "
                f"{r['p50_ms']} | {r['p99_ms']} | {r['max_ms']} | {r['n']} | "
                f"{r['events_replayed']:,} | {notes} |"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000, help="events to fill to")
    parser.add_argument(
        "--rebuild-events", type=int, default=None, help="stop the rebuild after this many"
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    events = min(args.events, 20_000) if args.quick else args.events
    sizes = (10, 1000) if args.quick else (10, 10_000)
    budget = 1.0 if args.quick else 3.0
    rebuild_events = args.rebuild_events if args.rebuild_events is not None else 200_000
    url = database_url()

    def progress(done: int, target: int) -> None:
        print(f"  fill: {done:,} / {target:,} events", file=sys.stderr)

    with scratch_schema(url, "scale") as schema:
        print(f"filling schema {schema} to {events:,} events", file=sys.stderr)
        filled = fill(url, schema, events, progress=progress)
        print(f"filled in {filled['seconds']} s; reading the feed", file=sys.stderr)
        feed = feed_read(url, schema)
        print("rebuilding the projections", file=sys.stderr)
        limit = rebuild_events if rebuild_events < filled["events"] else None
        rebuilt = rebuild(url, schema, max_events=limit)
    print("timing case loads", file=sys.stderr)
    loads = load_case_times(url, sizes=sizes, budget_s=budget)
    _print_report(filled, feed, rebuilt, loads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
