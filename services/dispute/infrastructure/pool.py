"""PostgreSQL connections that come back within a second after any fault.

eventsourcing's datastore keeps a psycopg_pool `ConnectionPool` that, as configured by
the library, (a) hands out pooled connections unchecked, so after a PostgreSQL restart
every stale connection fails one request, one at a time; (b) reconnects with a back-off
that doubles up to minutes; (c) makes a caller wait the full pool time-out for a
connection while the database is away, and the library's recorders retry that wait ten
times. `ResilientPostgresDatastore` (used by `postgres.Factory`) changes exactly that:

- A connection idle for more than `IDLE_CHECK_SECONDS` is checked (an empty query)
  before it is handed out. A connection found broken, in the check or while in use,
  drops every idle connection of the pool together (`drain`): they were opened before
  the same fault. Busy connections are not checked (they were used a moment ago).
- Lost connections are re-opened every `reconnect_interval` seconds (0.5 s), for as
  long as the database stays away, never giving up.
- While the database refuses connections, the pool is *down*: each failed attempt to
  reconnect fails the callers waiting for a connection at once, with
  `DatabaseUnavailable`, which the library's recorders do not retry. A request so fails
  within about `reconnect_interval` seconds (503 with Retry-After), never after a
  minute of retries; `down_reason()` says why (for /readyz).
- The pool logs one line when the database goes away and one when it is back, not one
  per failed attempt.

Errors a caller can meet (besides the library's own):

- `DatabaseUnavailable`: nothing was sent; safe to retry.
- `OutcomeUnknown`: a write was sent and the connection broke before its answer: it may
  or may not have committed. Only a retry with the same idempotency key can tell.

Reads of the events' rows may ask for their results in binary (`binary_results`): a
`bytea` column then arrives as its bytes, not as hexadecimal text twice its size that
libpq and psycopg must decode (a 1.4 MB snapshot: 2 ms instead of 12).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from time import monotonic
from typing import Any

import psycopg
from eventsourcing import persistence as es
from eventsourcing import postgres as es_postgres
from psycopg import Connection, Cursor, pq
from psycopg.rows import DictRow
from psycopg.types.composite import register_composite
from psycopg_pool import PoolTimeout
from psycopg_pool.base import AttemptWithBackoff, BasePool
from psycopg_pool.pool import AddConnection

log = logging.getLogger("services.dispute.storage")

IDLE_CHECK_SECONDS = 1.0
RECONNECT_INTERVAL_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 3  # libpq's, for one attempt to open a connection


class DatabaseUnavailable(es.PersistenceError):
    """The database cannot be reached (or no connection was free in time): nothing was
    sent. Not an `OperationalError`, so the library's recorders do not retry it."""


class OutcomeUnknown(es.PersistenceError):
    """A write was sent and the connection broke before the answer: it may have committed."""


# What the library's recorders and our own callers treat as "the database is away".
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    DatabaseUnavailable,
    OutcomeUnknown,
    es.OperationalError,
    es.InterfaceError,
)

# psycopg's errors as eventsourcing's (as `PostgresDatastore.get_connection` maps them).
_TRANSLATION: tuple[tuple[type[psycopg.Error], type[es.PersistenceError]], ...] = (
    (psycopg.InterfaceError, es.InterfaceError),
    (psycopg.OperationalError, es.OperationalError),
    (psycopg.DataError, es.DataError),
    (psycopg.IntegrityError, es.IntegrityError),
    (psycopg.InternalError, es.InternalError),
    (psycopg.ProgrammingError, es.ProgrammingError),
    (psycopg.NotSupportedError, es.NotSupportedError),
    (psycopg.DatabaseError, es.DatabaseError),
)


def translate(error: psycopg.Error) -> es.PersistenceError:
    for psycopg_class, es_class in _TRANSLATION:
        if isinstance(error, psycopg_class):
            return es_class(str(error))
    return es.PersistenceError(str(error))


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class _Steady(AttemptWithBackoff):
    """Reconnection attempts at a steady interval (with jitter), never giving up."""

    def __init__(self, interval: float) -> None:
        super().__init__(timeout=0.0)
        self.interval = interval

    def update_delay(self, now: float) -> None:
        self.delay = BasePool._jitter(self.interval, -0.1, 0.1)

    def time_to_give_up(self, now: float) -> bool:
        return False


class ResilientPool(es_postgres.ConnectionPool[Connection[DictRow]]):
    """eventsourcing's pool with the changes described in the module's docstring."""

    def __init__(self, *args: Any, reconnect_interval: float, **kwargs: Any) -> None:
        super().__init__(*args, check=self._check_if_idle, **kwargs)
        self.reconnect_interval = reconnect_interval
        self._down_since: float | None = None
        self._down_reason = ""
        self._state_lock = threading.Lock()

    # Status ------------------------------------------------------------------------------

    def down_reason(self) -> str | None:
        """Why the database is unreachable now (None: it is not known to be)."""
        with self._state_lock:
            if self._down_since is None:
                return None
            return f"database unreachable for {monotonic() - self._down_since:.1f} s: " + (
                self._down_reason
            )

    def _went_down(self, error: BaseException) -> None:
        with self._state_lock:
            self._down_reason = first_line(error)
            if self._down_since is None:
                self._down_since = monotonic()
                log.warning(
                    "database unreachable (%s); reconnecting every %.1f s",
                    self._down_reason,
                    self.reconnect_interval,
                )
        # The callers waiting for a connection fail now rather than after the pool's
        # time-out: the database is away (the next attempt may succeed; they retry).
        failure = PoolTimeout(f"database unreachable: {self._down_reason}")
        with self._lock:
            while self._waiting:
                self._waiting.popleft().fail(failure)

    def _came_back(self) -> None:
        with self._state_lock:
            if self._down_since is not None:
                log.warning("database reachable again after %.1f s", monotonic() - self._down_since)
                self._down_since = None

    # Checking ----------------------------------------------------------------------------

    @staticmethod
    def _check_if_idle(conn: Connection[Any]) -> None:
        if conn.closed or conn.broken:
            raise psycopg.OperationalError("the connection is closed")
        idle_since = getattr(conn, "_returned_at", None)
        if idle_since is not None and monotonic() - idle_since > IDLE_CHECK_SECONDS:
            es_postgres.ConnectionPool.check_connection(conn)

    def connection_broke(self, conn: Connection[Any], error: BaseException) -> None:
        """A connection was found broken: the idle ones, opened before the same fault,
        are dropped together (once per fault: not again for connections that were
        opened before the last drop)."""
        with self._state_lock:
            if getattr(conn, "_created_at", 0.0) <= self._drained_at:
                return
            self._drained_at = monotonic()
        log.warning("database connection lost (%s); reopening the pool's", first_line(error))
        self.drain()

    def _getconn_with_check_loop(self, deadline: float) -> Connection[DictRow]:
        # The library's loop sleeps a back-off (1 s, 2 s, ...) after each failed check;
        # here the first failure drops all idle connections, so the next one is fresh.
        while True:
            conn = self._getconn_unchecked(deadline - monotonic())
            try:
                self._check_connection(conn)
            except Exception as error:
                self._putconn(conn, from_getconn=True)
                self.connection_broke(conn, error)
                continue
            return conn

    def _return_connection(self, conn: Connection[DictRow], from_getconn: bool) -> None:
        conn._returned_at = monotonic()  # type: ignore[attr-defined]
        super()._return_connection(conn, from_getconn)

    # Reconnecting ------------------------------------------------------------------------

    def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        # As psycopg_pool's (3.3), with a steady interval, no giving up, and the status.
        if attempt is None:
            attempt = _Steady(self.reconnect_interval)
        try:
            conn = self._connect()
        except Exception as error:
            self._went_down(error)
            attempt.update_delay(monotonic())
            self.schedule_task(AddConnection(self, attempt, growing=growing), attempt.delay)
            return
        self._came_back()
        self._add_to_pool(conn)
        if growing:
            with self._lock:
                if self._nconns < self._min_size or (
                    self._nconns < self._max_size and self._waiting
                ):
                    self._nconns += 1
                    self.run_task(AddConnection(self, growing=True))
                else:
                    self._growing = False


class BinaryResultsCursor(Cursor[Any]):
    """A cursor that asks the server for its results in binary. Only for statements whose
    columns all have psycopg binary loaders giving the same values as the text ones (the
    events' tables: uuid, integers, text, bytea); an unknown type would arrive as bytes."""

    def __init__(self, connection: Connection[Any], *, row_factory: Any = None) -> None:
        super().__init__(connection, row_factory=row_factory)
        self.format = pq.Format.BINARY


class ResilientPostgresDatastore(es_postgres.PostgresDatastore):
    """eventsourcing's datastore on a `ResilientPool`; `get_connection` raises
    `DatabaseUnavailable` instead of waiting while the database is away."""

    def __init__(
        self, *args: Any, reconnect_interval: float = RECONNECT_INTERVAL_SECONDS, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        old = self.pool  # never opened: replaced before first use
        self.pool = ResilientPool(
            get_password_func=old.get_password_func,
            connection_class=Connection[DictRow],
            kwargs={**old.kwargs, "connect_timeout": CONNECT_TIMEOUT_SECONDS},  # type: ignore[dict-item]
            min_size=old.min_size,
            max_size=old.max_size,
            open=False,
            configure=self.after_connect_func(),
            timeout=old.timeout,
            max_waiting=old.max_waiting,
            max_lifetime=old.max_lifetime,
            reconnect_timeout=float("inf"),
            reconnect_interval=reconnect_interval,
        )
        self._binary = threading.local()

    @classmethod
    def like(cls, other: es_postgres.PostgresDatastore) -> ResilientPostgresDatastore:
        """A resilient datastore configured as `other` (which must not be in use yet)."""
        pool = other.pool
        kwargs = dict(pool.kwargs)  # type: ignore[arg-type]
        return cls(
            dbname=kwargs["dbname"],
            host=kwargs["host"],
            port=kwargs["port"],
            user=kwargs["user"],
            password=kwargs["password"],
            connect_timeout=pool.timeout,
            idle_in_transaction_session_timeout=other.idle_in_transaction_session_timeout,
            pool_size=pool.min_size,
            max_overflow=pool.max_size - pool.min_size,
            max_waiting=pool.max_waiting,
            conn_max_age=pool.max_lifetime,
            pre_ping=other.pre_ping,
            lock_timeout=other.lock_timeout,
            schema=other.schema,
            pool_open_timeout=other.pool_open_timeout,
            get_password_func=pool.get_password_func,
            single_row_tracking=other.single_row_tracking,
            originator_id_type=other.originator_id_type,
            enable_db_functions=other.enable_db_functions,
        )

    @property
    def resilient_pool(self) -> ResilientPool:
        assert isinstance(self.pool, ResilientPool)
        return self.pool

    def down_reason(self) -> str | None:
        return self.resilient_pool.down_reason()

    @contextmanager
    def binary_results(self) -> Iterator[None]:
        """Within the block, cursors of the connections `get_connection` gives this
        thread ask for binary results (see `BinaryResultsCursor` for when that is right)."""
        before = getattr(self._binary, "on", False)
        self._binary.on = True
        try:
            yield
        finally:
            self._binary.on = before

    @contextmanager
    def get_connection(self) -> Iterator[Connection[DictRow]]:
        pool = self.resilient_pool
        conn = self.acquire()
        binary = getattr(self._binary, "on", False)
        try:
            with conn:
                for info in self.psycopg_type_adapters.values():
                    if not conn.adapters.types.get(info.oid):
                        register_composite(info, conn)
                if binary:
                    conn.cursor_factory = BinaryResultsCursor
                yield conn
        except psycopg.Error as error:
            if conn.closed or conn.broken:
                pool.connection_broke(conn, error)
            raise translate(error) from error
        finally:
            if binary:
                conn.cursor_factory = Cursor
            pool.putconn(conn)

    def acquire(self) -> Connection[DictRow]:
        """A connection for a caller that holds it across several calls (an idempotency
        claim); give it back with `release`. Errors translated as `get_connection` does."""
        pool = self.resilient_pool
        pool.open(self.pool_open_timeout is not None, self.pool_open_timeout or 30.0)
        try:
            return pool.getconn()
        except PoolTimeout as error:
            raise DatabaseUnavailable(pool.down_reason() or first_line(error)) from error
        except psycopg.Error as error:
            raise translate(error) from error

    def release(self, conn: Connection[DictRow]) -> None:
        """Gives back a connection from `acquire` (the pool replaces it if broken)."""
        self.resilient_pool.putconn(conn)
