"""This service's own tables on SQLite: one recorder class per concern, in the events'
database file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing import sqlite as es_sqlite

from ..clock import SandboxClockRecorder
from ..deadlines import PENDING_TABLE, TRACKING_TABLE, UNCHANGED, PendingDeadlineRecorder, Visit
from ..quarantine import QuarantineRecorder
from ..tables import TableRecorder
from ..webhooks import RelayPositionRecorder, WebhookRecorder


class SQLiteTables(TableRecorder):
    datastore: es_sqlite.SQLiteDatastore
    p = "?"
    ts_type = "text"
    uid_type = "text"
    real_type = "REAL"
    serial_key = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def table(self, name: str) -> str:
        return name

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        if not commit:
            with self.datastore.transaction(commit=False) as cursor:
                yield cursor
            return
        # Writes: BEGIN IMMEDIATE takes the write lock first (waiting for it). A deferred
        # BEGIN that reads before it writes fails at once ("database is locked", no
        # waiting) when another process committed in between (WAL mode).
        with self.datastore.get_connection(commit=True) as conn:
            cursor = conn.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                yield cursor
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    def ddl(self) -> Any:
        return self.transaction(commit=True)  # the write lock serialises it already

    def rowcount(self, cursor: Any) -> int:
        # eventsourcing wraps SQLite's cursor
        return int(getattr(cursor, "sqlite_cursor", cursor).rowcount)

    def ts(self, value: datetime | None) -> Any:
        if value is None:
            return None
        return value.astimezone(UTC).isoformat(timespec="microseconds")

    def uid(self, value: UUID) -> Any:
        return str(value)


class SQLiteSandboxClockRecorder(SQLiteTables, SandboxClockRecorder):
    pass


class SQLitePendingDeadlineRecorder(SQLiteTables, PendingDeadlineRecorder):
    def lock_position(self, c: Any, tracker: str) -> int:
        # The BEGIN IMMEDIATE of `transaction` already holds the write lock.
        tracking = self.table(TRACKING_TABLE)
        c.execute(f"UPDATE {tracking} SET position = position WHERE name = ?", (tracker,))
        c.execute(f"SELECT position FROM {tracking} WHERE name = ?", (tracker,))
        return int(c.fetchone()["position"])

    def visit_due(self, now: datetime, limit: int, visit: Visit) -> int:
        """One process writes at a time here: the due rows are read, then each visited and
        its check_at stored in a transaction of its own."""
        with self.transaction(commit=False) as c:
            c.execute(
                f"SELECT dispute_id, version FROM {self.table(PENDING_TABLE)} "
                "WHERE check_at <= ? ORDER BY check_at LIMIT ?",
                (self.ts(now), limit),
            )
            due = [(self.from_uid(r["dispute_id"]), r["version"]) for r in c.fetchall()]
        fired = 0
        for dispute_id, version in due:
            count, check_at, at_version = visit(dispute_id, version)
            fired += count
            if check_at is not UNCHANGED:
                with self.transaction(commit=True) as c:
                    self.set_check_at(c, dispute_id, at_version, check_at)
        return fired


class SQLiteQuarantineRecorder(SQLiteTables, QuarantineRecorder):
    pass


class SQLiteWebhookRecorder(SQLiteTables, WebhookRecorder):
    claim_lock = ""


class SQLiteRelayPositionRecorder(SQLiteTables, RelayPositionRecorder):
    pass
