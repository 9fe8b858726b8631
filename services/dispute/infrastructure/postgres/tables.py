"""This service's own tables on PostgreSQL: one recorder class per concern, in the
events' schema."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing import postgres as es_postgres

from ..clock import SandboxClockRecorder
from ..deadlines import PENDING_TABLE, TRACKING_TABLE, UNCHANGED, PendingDeadlineRecorder, Visit
from ..pool import DatabaseUnavailable, first_line, translate
from ..quarantine import QuarantineRecorder
from ..tables import TableRecorder
from ..webhooks import RelayPositionRecorder, WebhookRecorder


@contextmanager
def serialised_ddl(datastore: es_postgres.PostgresDatastore, name: str) -> Iterator[None]:
    """Holds a PostgreSQL advisory lock named after `name` in the datastore's schema.

    Processes starting together on an empty database (replicas; the service, worker and
    projector of one deployment) would otherwise run the same CREATE TYPE / TABLE /
    FUNCTION concurrently and fail ("duplicate key", "tuple concurrently updated"); under
    the lock the second finds everything there. It is taken on a connection of its own,
    since the DDL takes pooled ones.
    """
    kwargs = cast(dict[str, Any], datastore.pool.kwargs)
    params = {k: v for k, v in kwargs.items() if k != "row_factory"}
    digest = hashlib.sha256(f"{datastore.schema}.{name}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    # Outside the pool, so its errors are translated here as the pool's are: a refused
    # connection ("too many clients", the server away) is DatabaseUnavailable (a 503 to
    # a request that creates tables on first use), never a raw psycopg error.
    try:
        conn = psycopg.connect(**params, autocommit=True)
    except psycopg.OperationalError as error:
        raise DatabaseUnavailable(first_line(error)) from error
    with conn:
        try:
            conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        except psycopg.Error as error:
            raise translate(error) from error
        try:
            yield
        finally:
            # If this fails, the session ends as the block closes it, and the lock with it.
            with suppress(psycopg.Error):
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


class PostgresTables(TableRecorder):
    datastore: es_postgres.PostgresDatastore
    p = "%s"
    ts_type = "timestamptz"
    uid_type = "uuid"
    real_type = "double precision"
    serial_key = "bigserial PRIMARY KEY"

    def table(self, name: str) -> str:
        return f'"{self.datastore.schema}"."{name}"'

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as cursor:
            yield cursor

    @contextmanager
    def ddl(self) -> Iterator[Any]:
        # Concurrent `CREATE TABLE IF NOT EXISTS` can still collide: one at a time.
        with self.transaction(commit=True) as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('dispute_scheduler_ddl'))")
            yield cursor

    def rowcount(self, cursor: Any) -> int:
        return int(cursor.rowcount)

    def ts(self, value: datetime | None) -> Any:
        return value

    def uid(self, value: UUID) -> Any:
        return value


class PostgresSandboxClockRecorder(PostgresTables, SandboxClockRecorder):
    pass


class PostgresPendingDeadlineRecorder(PostgresTables, PendingDeadlineRecorder):
    def lock_position(self, c: Any, tracker: str) -> int:
        c.execute(
            f"SELECT position FROM {self.table(TRACKING_TABLE)} WHERE name = %s FOR UPDATE",
            (tracker,),
        )
        return int(c.fetchone()["position"])

    def visit_due(self, now: datetime, limit: int, visit: Visit) -> int:
        """Each dispute is claimed (row lock, SKIP LOCKED) while it is visited, so replicas
        share the work instead of racing for it."""
        fired = 0
        tried: list[UUID] = []
        while len(tried) < limit:
            with self.transaction(commit=True) as c:
                c.execute(
                    f"SELECT dispute_id, version FROM {self.table(PENDING_TABLE)} "
                    "WHERE check_at <= %s AND NOT (dispute_id = ANY(%s)) "
                    "ORDER BY check_at LIMIT 1 FOR UPDATE SKIP LOCKED",
                    (now, tried),
                )
                row = c.fetchone()
                if row is None:
                    break
                dispute_id = self.from_uid(row["dispute_id"])
                tried.append(dispute_id)
                count, check_at, at_version = visit(dispute_id, row["version"])
                fired += count
                if check_at is not UNCHANGED:
                    self.set_check_at(c, dispute_id, at_version, check_at)
        return fired


class PostgresQuarantineRecorder(PostgresTables, QuarantineRecorder):
    pass


class PostgresWebhookRecorder(PostgresTables, WebhookRecorder):
    claim_lock = " FOR UPDATE SKIP LOCKED"


class PostgresRelayPositionRecorder(PostgresTables, RelayPositionRecorder):
    pass
