"""Time: the deadline scheduler and the sandbox clock.

Three pieces, all stored in the events' own database (the application's datastore, in
the PostgreSQL schema of the environment, `POSTGRES_SCHEMA`):

- `ClockStore` keeps the sandbox clock's offset (table `dispute_sandbox_clock`), and
  `ServiceClock` is real UTC time plus that offset.
- `DeadlineScheduler` keeps one row per dispute with a pending time-out
  (`dispute_pending_deadlines`: the dispute, when its earliest time-out falls due, the
  event version that row was computed from, and when to look at it next). It follows
  the application's ordered notification log from a position stored in
  `dispute_scheduler_tracking`, and every batch updates the rows and the position in ONE
  transaction: a crash never loses nor applies an event twice. It fires what is due with
  an indexed query on `check_at`, never a scan of every dispute, through
  `DisputeApplication.fire_due_timeouts`, which re-reads the aggregate and asks the
  transition table what is due: a time-out already fired is not fired again, and two
  replicas racing on one time-out record one event (the aggregate's version check).
  On PostgreSQL a dispute is also claimed (`FOR UPDATE SKIP LOCKED`) while it is fired,
  so two replicas do not even try the same one at once.
- `advance_clock` moves the sandbox clock forward and returns once every time-out now
  due has fired, stepping through the due times in order, like Stripe's test clocks.
  Its target is fixed per idempotency key first (`dispute_sandbox_clock_advances`), so
  a retried advance finishes the same move rather than doubling it.

Which deadlines have a time-out comes from `rules.DEADLINES`, never from this module.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, cast
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.utils import resolve_topic

from shared.clock import Clock, SystemClock

from .application import DisputeApplication
from .domain import Dispute, rules
from .infrastructure.pool import TRANSIENT_ERRORS
from .metrics import TIMEOUTS_FIRED
from .quarantine import Quarantine

log = logging.getLogger(__name__)

PENDING_TABLE = "dispute_pending_deadlines"
TRACKING_TABLE = "dispute_scheduler_tracking"
CLOCK_TABLE = "dispute_sandbox_clock"
ADVANCES_TABLE = "dispute_sandbox_clock_advances"
ADVANCES_KEPT_SECONDS = 48 * 3600  # as long as idempotency keys
TRACKER_NAME = "deadline-scheduler"
CLOCK_NAME = "sandbox"


# Storage helpers -----------------------------------------------------------------------


def _is_postgres(datastore: Any) -> bool:
    if isinstance(datastore, PostgresDatastore):
        return True
    if isinstance(datastore, SQLiteDatastore):
        return False
    raise TypeError(f"unsupported datastore {type(datastore).__name__}: SQLite or PostgreSQL")


def _datastore_of(app_or_datastore: Any) -> Any:
    recorder = getattr(app_or_datastore, "recorder", None)
    if recorder is not None:
        return recorder.datastore
    return app_or_datastore


class _Sql:
    """The same statements on both backends: `?` placeholders become `%s` on PostgreSQL,
    `{name}` table names are schema-qualified there."""

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore
        self.postgres = _is_postgres(datastore)
        self.schema: str = getattr(datastore, "schema", "") if self.postgres else ""

    def table(self, name: str) -> str:
        return f'"{self.schema}"."{name}"' if self.postgres else name

    def q(self, statement: str, **tables: str) -> str:
        text = statement.format(**{k: self.table(v) for k, v in tables.items()})
        return text.replace("?", "%s") if self.postgres else text

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        if self.postgres or not commit:
            with self.datastore.transaction(commit=commit) as cursor:
                yield cursor
            return
        # SQLite writes: BEGIN IMMEDIATE takes the write lock first (waiting for it). A
        # deferred BEGIN that reads before it writes fails at once ("database is locked",
        # no waiting) when another process committed in between (WAL mode).
        with self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    @contextmanager
    def ddl(self) -> Iterator[Any]:
        """A transaction for creating tables; on PostgreSQL serialised by an advisory
        lock, since concurrent `CREATE TABLE IF NOT EXISTS` can still collide there."""
        with self.transaction(commit=True) as cursor:
            if self.postgres:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtext('dispute_scheduler_ddl'))")
            yield cursor

    # Values: timestamps are timestamptz on PostgreSQL, fixed-width UTC ISO text on SQLite
    # (so that text order is time order); dispute ids are uuid there, text here.
    def ts(self, value: datetime | None) -> Any:
        if value is None or self.postgres:
            return value
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def from_ts(self, value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        return datetime.fromisoformat(value)

    def uid(self, value: UUID) -> Any:
        return value if self.postgres else str(value)

    def from_uid(self, value: Any) -> UUID:
        return value if isinstance(value, UUID) else UUID(str(value))

    @property
    def ts_type(self) -> str:
        return "timestamptz" if self.postgres else "text"

    @property
    def uid_type(self) -> str:
        return "uuid" if self.postgres else "text"


def _offset_us(offset: timedelta) -> int:
    return (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds


# The sandbox clock ---------------------------------------------------------------------


class ClockStore:
    """The sandbox clock's offset, persisted in the events' database (survives restarts).

    `ClockStore(app)` or `ClockStore(datastore)` (`app.recorder.datastore`). The table is
    created idempotently on construction. The offset only ever moves forward.
    """

    def __init__(self, app_or_datastore: Any) -> None:
        self._sql = _Sql(_datastore_of(app_or_datastore))
        s = self._sql
        with s.ddl() as c:
            c.execute(
                s.q(
                    "CREATE TABLE IF NOT EXISTS {t} ("
                    "name text PRIMARY KEY, offset_us bigint NOT NULL)",
                    t=CLOCK_TABLE,
                )
            )
            c.execute(
                s.q(
                    "INSERT INTO {t} (name, offset_us) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
                    t=CLOCK_TABLE,
                ),
                (CLOCK_NAME,),
            )
            c.execute(
                s.q(
                    "CREATE TABLE IF NOT EXISTS {t} (request text PRIMARY KEY, "
                    "target_us bigint NOT NULL, created_at double precision NOT NULL)",
                    t=ADVANCES_TABLE,
                )
            )

    def advance_target(self, request: str | None, duration: timedelta) -> timedelta:
        """The offset that advancing by `duration` moves the clock to: the stored offset
        plus `duration`, fixed in one transaction by the first attempt of `request` (an
        idempotency key). A retry of the request, after a crash halfway through the
        move, gets the same target, so it finishes the move instead of doubling it.
        Without a request, each call is a new move."""
        if request is None:
            return self.load() + duration
        s = self._sql
        now = time.time()
        with s.transaction(commit=True) as c:
            c.execute(
                s.q("DELETE FROM {a} WHERE created_at < ?", a=ADVANCES_TABLE),
                (now - ADVANCES_KEPT_SECONDS,),
            )
            c.execute(
                s.q(
                    "INSERT INTO {a} (request, target_us, created_at) "
                    "SELECT ?, offset_us + ?, ? FROM {t} WHERE name = ? "
                    "ON CONFLICT (request) DO NOTHING",
                    a=ADVANCES_TABLE,
                    t=CLOCK_TABLE,
                ),
                (request, _offset_us(duration), now, CLOCK_NAME),
            )
            c.execute(
                s.q("SELECT target_us FROM {a} WHERE request = ?", a=ADVANCES_TABLE), (request,)
            )
            row = c.fetchone()
        return timedelta(microseconds=row["target_us"])

    def load(self) -> timedelta:
        """The stored offset (zero if never moved)."""
        s = self._sql
        with s.transaction(commit=False) as c:
            c.execute(s.q("SELECT offset_us FROM {t} WHERE name = ?", t=CLOCK_TABLE), (CLOCK_NAME,))
            row = c.fetchone()
        return timedelta(microseconds=row["offset_us"]) if row else timedelta(0)

    def save(self, offset: timedelta) -> timedelta:
        """Stores `offset` unless a larger one is stored already (the clock never goes
        back, also when two processes move it at once); returns the offset now stored.

        Raises ValueError for a negative offset.
        """
        if offset < timedelta(0):
            raise ValueError("the sandbox clock's offset cannot be negative")
        s = self._sql
        with s.transaction(commit=True) as c:
            c.execute(
                s.q(
                    "UPDATE {t} SET offset_us = ? WHERE name = ? AND offset_us < ?",
                    t=CLOCK_TABLE,
                ),
                (_offset_us(offset), CLOCK_NAME, _offset_us(offset)),
            )
            c.execute(s.q("SELECT offset_us FROM {t} WHERE name = ?", t=CLOCK_TABLE), (CLOCK_NAME,))
            row = c.fetchone()
        return timedelta(microseconds=row["offset_us"])


class ServiceClock:
    """The service's clock (a `shared.clock.Clock`): the base clock (real UTC time by
    default) plus the sandbox offset from a `ClockStore`.

    Constructible before the application exists (it takes the clock in its constructor);
    `bind(store)` afterwards loads the stored offset. Unbound, the offset is zero.
    `refresh()` re-reads the offset (another process may have moved it); with
    `refresh_seconds`, `now()` also re-reads it when the last read is older than that.
    """

    def __init__(
        self,
        base: Clock | None = None,
        store: ClockStore | None = None,
        *,
        refresh_seconds: float | None = None,
    ) -> None:
        self._base = base or SystemClock()
        self._store: ClockStore | None = None
        self._offset = timedelta(0)
        self._refresh_seconds = refresh_seconds
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        if store is not None:
            self.bind(store)

    @property
    def base(self) -> Clock:
        return self._base

    @property
    def store(self) -> ClockStore | None:
        return self._store

    @property
    def offset(self) -> timedelta:
        return self._offset

    def bind(self, store: ClockStore) -> None:
        """Uses `store` from now on, and loads its offset."""
        self._store = store
        self.refresh()

    def refresh(self) -> timedelta:
        """Re-reads the stored offset (never moving back); returns the offset in use."""
        if self._store is None:
            return self._offset
        stored = self._store.load()
        self._set(stored)
        return self._offset

    def _set(self, offset: timedelta) -> None:
        with self._lock:
            self._offset = max(self._offset, offset)
            self._loaded_at = time.monotonic()

    def now(self) -> datetime:
        if (
            self._refresh_seconds is not None
            and self._store is not None
            and time.monotonic() - self._loaded_at >= self._refresh_seconds
        ):
            self.refresh()
        return self._base.now() + self._offset

    def move_to(self, offset: timedelta) -> timedelta:
        """Persists `offset` (never backwards) and uses it; returns the offset in use."""
        if self._store is None:
            raise RuntimeError("ServiceClock is not bound to a ClockStore")
        self._set(self._store.save(offset))
        return self._offset


# The pending-deadline table ------------------------------------------------------------


@dataclass(frozen=True)
class PendingRow:
    """What the events say about one dispute: its earliest time-out and the version of
    the event that said so."""

    due_at: datetime
    version: int


@dataclass(frozen=True)
class _DeadlineFacts:
    deadlines: list[dict[str, Any]]


def pending_row(event: Dispute.Event) -> PendingRow | None:
    """The row an event leaves for its dispute (None: no pending time-out)."""
    due_at = rules.next_timeout_at(cast(Any, _DeadlineFacts(list(event.deadlines))))
    if due_at is None:
        return None
    return PendingRow(due_at=due_at, version=event.originator_version)


@cache
def _is_dispute_topic(topic: str) -> bool:
    # An event class this code does not know raises (TopicError): the sync fails loudly
    # and keeps its position rather than skip an event that may carry a deadline.
    cls = resolve_topic(topic)
    return isinstance(cls, type) and issubclass(cls, Dispute.Event)


class DeadlineScheduler:
    """Keeps the pending-deadline table from the events and fires what falls due.

    `app` is a DisputeApplication; `clock` must be the clock the application fires with
    (the default, `app.clock`). Several schedulers (threads or processes, any replica)
    may run on one store at once.
    """

    def __init__(
        self,
        app: DisputeApplication,
        clock: Clock | None = None,
        *,
        batch_size: int = 500,
        retry_after: timedelta = timedelta(seconds=30),
    ) -> None:
        self.app = app
        self.clock: Clock = clock or app.clock
        self.batch_size = batch_size
        self.retry_after = retry_after
        self._sql = _Sql(_datastore_of(app))
        self._create_tables()
        self.quarantine = Quarantine(app)

    # Tables ------------------------------------------------------------------------------

    def _create_tables(self) -> None:
        s = self._sql
        with s.ddl() as c:
            c.execute(
                s.q(
                    f"CREATE TABLE IF NOT EXISTS {{t}} ("
                    f"dispute_id {s.uid_type} PRIMARY KEY, "
                    f"due_at {s.ts_type} NOT NULL, "
                    f"version integer NOT NULL, "
                    f"check_at {s.ts_type})",
                    t=PENDING_TABLE,
                )
            )
            index = f"{PENDING_TABLE}_check_at_idx"
            target = s.table(PENDING_TABLE)
            c.execute(f'CREATE INDEX IF NOT EXISTS "{index}" ON {target} (check_at)')
            c.execute(
                s.q(
                    "CREATE TABLE IF NOT EXISTS {t} ("
                    "name text PRIMARY KEY, position bigint NOT NULL)",
                    t=TRACKING_TABLE,
                )
            )
            c.execute(
                s.q(
                    "INSERT INTO {t} (name, position) VALUES (?, 0) ON CONFLICT (name) DO NOTHING",
                    t=TRACKING_TABLE,
                ),
                (TRACKER_NAME,),
            )

    # Following the log -------------------------------------------------------------------

    def position(self) -> int:
        """The last notification id applied to the table."""
        s = self._sql
        with s.transaction(commit=False) as c:
            c.execute(
                s.q("SELECT position FROM {t} WHERE name = ?", t=TRACKING_TABLE), (TRACKER_NAME,)
            )
            row = c.fetchone()
        return int(row["position"]) if row else 0

    def _lock_position(self, c: Any) -> int:
        """Takes the tracking row's lock for this transaction (other followers wait) and
        returns the position."""
        s = self._sql
        if s.postgres:
            c.execute(
                s.q("SELECT position FROM {t} WHERE name = ? FOR UPDATE", t=TRACKING_TABLE),
                (TRACKER_NAME,),
            )
        else:  # SQLite: the BEGIN IMMEDIATE of `transaction` already holds the write lock
            c.execute(
                s.q("UPDATE {t} SET position = position WHERE name = ?", t=TRACKING_TABLE),
                (TRACKER_NAME,),
            )
            c.execute(
                s.q("SELECT position FROM {t} WHERE name = ?", t=TRACKING_TABLE), (TRACKER_NAME,)
            )
        return int(c.fetchone()["position"])

    def sync(self) -> int:
        """Applies every event recorded since the tracked position; returns how many
        notifications were consumed. Each batch updates the table and the position in
        one transaction."""
        total = 0
        while True:
            consumed = self._sync_batch()
            total += consumed
            if consumed < self.batch_size:
                return total

    def _sync_batch(self) -> int:
        s = self._sql
        with s.transaction(commit=True) as c:
            position = self._lock_position(c)
            notifications = self.app.recorder.select_notifications(position + 1, self.batch_size)
            if not notifications:
                return 0
            latest: dict[UUID, PendingRow | None] = {}
            for notification in notifications:
                try:
                    if not _is_dispute_topic(notification.topic):
                        continue
                    event = self.app.mapper.to_domain_event(notification)
                    if isinstance(event, Dispute.Event):
                        latest[event.originator_id] = pending_row(event)
                except Exception as error:  # an event this code cannot read: set it aside
                    self.quarantine.record(TRACKER_NAME, notification, error, cursor=c)
            self._write_rows(c, latest)
            c.execute(
                s.q("UPDATE {t} SET position = ? WHERE name = ?", t=TRACKING_TABLE),
                (notifications[-1].id, TRACKER_NAME),
            )
        return len(notifications)

    def rewind_to(self, position: int) -> None:
        """Moves the tracked position back (never forward) so that the next sync re-reads
        the log from there: for quarantined events given back after a fix."""
        s = self._sql
        with s.transaction(commit=True) as c:
            current = self._lock_position(c)
            c.execute(
                s.q("UPDATE {t} SET position = ? WHERE name = ?", t=TRACKING_TABLE),
                (max(0, min(current, position)), TRACKER_NAME),
            )

    def _write_rows(self, c: Any, rows: Mapping[UUID, PendingRow | None]) -> None:
        s = self._sql
        upserts = [
            (s.uid(d), s.ts(r.due_at), r.version, s.ts(r.due_at))
            for d, r in rows.items()
            if r is not None
        ]
        deletes = [(s.uid(d),) for d, r in rows.items() if r is None]
        if upserts:
            c.executemany(
                s.q(
                    "INSERT INTO {t} (dispute_id, due_at, version, check_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (dispute_id) DO UPDATE SET due_at = excluded.due_at, "
                    "version = excluded.version, check_at = excluded.check_at",
                    t=PENDING_TABLE,
                ),
                upserts,
            )
        if deletes:
            c.executemany(s.q("DELETE FROM {t} WHERE dispute_id = ?", t=PENDING_TABLE), deletes)

    # Reading and rebuilding the table ----------------------------------------------------

    def pending(self) -> dict[UUID, PendingRow]:
        """The table as it stands."""
        s = self._sql
        with s.transaction(commit=False) as c:
            c.execute(s.q("SELECT dispute_id, due_at, version FROM {t}", t=PENDING_TABLE))
            rows = c.fetchall()
        return {
            s.from_uid(r["dispute_id"]): PendingRow(s.from_ts(r["due_at"]), r["version"])  # type: ignore[arg-type]
            for r in rows
        }

    def computed_from_zero(self, stop: int | None = None) -> tuple[dict[UUID, PendingRow], int]:
        """What the table would hold after applying the whole log up to `stop` (default:
        everything stored), and the last notification id read."""
        rows: dict[UUID, PendingRow | None] = {}
        position = 0
        while True:
            notifications = self.app.recorder.select_notifications(
                position + 1, self.batch_size, stop
            )
            for notification in notifications:
                try:
                    if _is_dispute_topic(notification.topic):
                        event = self.app.mapper.to_domain_event(notification)
                        if isinstance(event, Dispute.Event):
                            rows[event.originator_id] = pending_row(event)
                except Exception as error:
                    self.quarantine.record(TRACKER_NAME, notification, error)
            if notifications:
                position = notifications[-1].id
            if len(notifications) < self.batch_size:
                break
        return {d: r for d, r in rows.items() if r is not None}, position

    def rebuild(self) -> int:
        """Recomputes the table from zero, up to the tracked position, in one transaction
        (followers wait meanwhile), then catches up; returns the number of rows."""
        s = self._sql
        with s.transaction(commit=True) as c:
            position = self._lock_position(c)
            rows, _ = self.computed_from_zero(stop=position) if position else ({}, 0)
            c.execute(s.q("DELETE FROM {t}", t=PENDING_TABLE))
            self._write_rows(c, rows)
        self.sync()
        return len(self.pending())

    def next_check_at(self) -> datetime | None:
        """When the scheduler next has something to look at (None: nothing pending)."""
        s = self._sql
        with s.transaction(commit=False) as c:
            c.execute(s.q("SELECT MIN(check_at) AS t FROM {t}", t=PENDING_TABLE))
            row = c.fetchone()
        return s.from_ts(row["t"]) if row else None

    def count_due(self, at: datetime | None = None) -> int:
        """How many disputes are due to be looked at, at `at` (default now)."""
        s = self._sql
        at = at or self.clock.now()
        with s.transaction(commit=False) as c:
            c.execute(
                s.q("SELECT COUNT(*) AS n FROM {t} WHERE check_at <= ?", t=PENDING_TABLE),
                (s.ts(at),),
            )
            return int(c.fetchone()["n"])

    # Firing --------------------------------------------------------------------------------

    def fire_due(self, limit: int = 100) -> int:
        """Fires the time-outs of up to `limit` disputes whose next check is due now
        (an indexed query on `check_at`); returns how many time-outs fired."""
        now = self.clock.now()
        if self._sql.postgres:
            return self._fire_due_claiming(now, limit)
        s = self._sql
        with s.transaction(commit=False) as c:
            c.execute(
                s.q(
                    "SELECT dispute_id, version FROM {t} WHERE check_at <= ? "
                    "ORDER BY check_at LIMIT ?",
                    t=PENDING_TABLE,
                ),
                (s.ts(now), limit),
            )
            due = [(s.from_uid(r["dispute_id"]), r["version"]) for r in c.fetchall()]
        fired = 0
        for dispute_id, version in due:
            count, check_at, at_version = self._fire_one(dispute_id, version, now)
            fired += count
            if check_at is not _UNCHANGED:
                with s.transaction(commit=True) as c:
                    self._set_check_at(c, dispute_id, at_version, check_at)
        return fired

    def _fire_due_claiming(self, now: datetime, limit: int) -> int:
        """PostgreSQL: each dispute is claimed (row lock, SKIP LOCKED) while it is fired,
        so replicas share the work instead of racing for it."""
        s = self._sql
        fired = 0
        tried: list[UUID] = []
        while len(tried) < limit:
            with s.transaction(commit=True) as c:
                c.execute(
                    s.q(
                        "SELECT dispute_id, version FROM {t} "
                        "WHERE check_at <= ? AND NOT (dispute_id = ANY(?)) "
                        "ORDER BY check_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                        t=PENDING_TABLE,
                    ),
                    (now, tried),
                )
                row = c.fetchone()
                if row is None:
                    break
                dispute_id = s.from_uid(row["dispute_id"])
                tried.append(dispute_id)
                count, check_at, at_version = self._fire_one(dispute_id, row["version"], now)
                fired += count
                if check_at is not _UNCHANGED:
                    self._set_check_at(c, dispute_id, at_version, check_at)
        return fired

    def _fire_one(self, dispute_id: UUID, version: int, now: datetime) -> tuple[int, Any, int]:
        """Fires one dispute's due time-outs. Returns (how many fired, the check_at to
        store when nothing fired or it failed, else _UNCHANGED, the version it is for)."""
        correlation_id = f"deadline-{dispute_id}-v{version}-{uuid.uuid4().hex[:8]}"
        about = {"dispute_id": str(dispute_id), "request_id": correlation_id}
        try:
            fired = self.app.fire_due_timeouts(dispute_id, correlation_id)
        except TRANSIENT_ERRORS:
            raise  # the database is away: the round ends, the next one tries again
        except Exception:
            log.exception(
                "firing the time-outs of dispute %s failed; retrying later", dispute_id, extra=about
            )
            return 0, now + self.retry_after, version
        if fired:
            TIMEOUTS_FIRED.inc(len(fired))
            log.info(
                "fired %s on dispute %s (correlation id %s)",
                ", ".join(fired),
                dispute_id,
                correlation_id,
                extra=about,
            )
            return len(fired), _UNCHANGED, version  # the new events reset the row on sync
        # Nothing was due after all (already fired, or the table refuses it in this
        # state): look again at the next deadline still to come, if any.
        try:
            dispute: Dispute = self.app.repository.get(dispute_id)
        except TRANSIENT_ERRORS:
            raise
        except Exception:
            log.exception("reading dispute %s failed; retrying later", dispute_id)
            return 0, now + self.retry_after, version
        later = [
            d["due_at"]
            for d in dispute.deadlines
            if rules.DEADLINES.get(d["kind"]) and d["due_at"] > now
        ]
        return 0, (min(later) if later else None), dispute.version

    def _set_check_at(
        self, c: Any, dispute_id: UUID, version: int, check_at: datetime | None
    ) -> None:
        # Only while the row still describes that version: a newer event resets it on sync.
        s = self._sql
        c.execute(
            s.q(
                "UPDATE {t} SET check_at = ? WHERE dispute_id = ? AND version = ?",
                t=PENDING_TABLE,
            ),
            (s.ts(check_at), s.uid(dispute_id), version),
        )

    # Running ---------------------------------------------------------------------------

    def run_once(self, limit: int = 100) -> int:
        """Applies new events, then fires what is due; returns how many time-outs fired."""
        self.sync()
        return self.fire_due(limit)

    def run_forever(
        self,
        stop: threading.Event,
        poll_seconds: float = 1.0,
        before_each: Any = None,
    ) -> None:
        """Runs `run_once` every `poll_seconds` until `stop` is set (at once when a round
        fired a full batch). `before_each`, if given, is called before every round (the
        worker refreshes the sandbox clock there). Errors are logged, not raised."""
        while not stop.is_set():
            busy = False
            try:
                if before_each is not None:
                    before_each()
                fired = self.run_once()
                busy = fired > 0 and self.count_due() > 0
            except TRANSIENT_ERRORS as error:
                # The pool logs one line when the database goes and one when it is back.
                log.debug("deadline scheduler round failed (%s); retrying", error)
            except Exception:
                log.exception("deadline scheduler round failed; retrying")
            if not busy:
                stop.wait(poll_seconds)


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


_UNCHANGED: Any = _Unchanged()


# Sandbox: moving the clock ---------------------------------------------------------------


def advance_clock(
    clock: ServiceClock,
    store: ClockStore,
    scheduler: DeadlineScheduler,
    duration: timedelta,
    *,
    request: str | None = None,
    timeout_seconds: float = 60.0,
) -> datetime:
    """Moves the sandbox clock forward by `duration` and returns the new now once every
    time-out now due has fired.

    The move's target offset is fixed first, in one transaction, per `request` (the
    caller's idempotency key: `ClockStore.advance_target`), so a retry after a crash
    halfway finishes the same move and never advances twice. Time then moves in steps
    through the due times in order, so a time-out that starts a new deadline falls due
    at the right moment too (advancing 30 days runs a case through several lapses). The
    offset is persisted at each step (never backwards). Raises ValueError for a negative
    duration, TimeoutError if time-outs claimed by another replica are still unfired
    after `timeout_seconds`.
    """
    if duration < timedelta(0):
        raise ValueError("the clock only moves forward")
    if clock.store is not store:
        clock.bind(store)
    else:
        clock.refresh()
    target_offset = store.advance_target(request, duration)
    deadline = time.monotonic() + timeout_seconds

    def settle_at(limit_to: datetime) -> None:
        # Sync and fire until nothing is due at the clock's now (<= limit_to's step).
        while True:
            scheduler.sync()
            if scheduler.count_due() == 0:
                return
            fired = scheduler.fire_due()
            scheduler.sync()
            if fired == 0 and scheduler.count_due() > 0:
                if time.monotonic() > deadline:
                    raise TimeoutError("time-outs due are still unfired (claimed elsewhere?)")
                time.sleep(0.02)  # claimed by another replica: wait for it to finish

    while True:
        scheduler.sync()
        step = scheduler.next_check_at()
        if step is None or step > clock.base.now() + target_offset:
            break
        if step > clock.now():
            clock.move_to(step - clock.base.now())
        settle_at(step)
        if time.monotonic() > deadline:
            raise TimeoutError("advancing the clock did not settle in time")
    clock.move_to(target_offset)
    settle_at(clock.now())
    return clock.now()
