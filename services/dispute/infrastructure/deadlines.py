"""The pending-deadline table and the position of the log it follows.

- `dispute_pending_deadlines`: one row per dispute with a pending time-out: when its
  earliest time-out falls due, the event version that row was computed from, and when to
  look at it next (`check_at`, indexed: firing never scans every dispute).
- `dispute_scheduler_tracking`: the last notification id applied, per follower name.

A batch of events updates the rows and the position in one transaction (`transaction`,
`lock_position`, `write_rows`, `set_position`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from .tables import TableRecorder

PENDING_TABLE = "dispute_pending_deadlines"
TRACKING_TABLE = "dispute_scheduler_tracking"


class Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = Unchanged()  # a visit's check_at when the row is left as it is

# Fires one due dispute (its id, the version its row was computed from): how many
# time-outs fired, the check_at to store (or UNCHANGED) and the version it is for.
Visit = Callable[[UUID, int], tuple[int, Any, int]]


class PendingDeadlineRecorder(TableRecorder):
    def create_tables(self, tracker: str) -> None:
        p, pending, tracking = self.p, self.table(PENDING_TABLE), self.table(TRACKING_TABLE)
        with self.ddl() as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {pending} ("
                f"dispute_id {self.uid_type} PRIMARY KEY, "
                f"due_at {self.ts_type} NOT NULL, "
                f"version integer NOT NULL, "
                f"check_at {self.ts_type})"
            )
            c.execute(
                f'CREATE INDEX IF NOT EXISTS "{PENDING_TABLE}_check_at_idx" ON {pending} (check_at)'
            )
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {tracking} ("
                "name text PRIMARY KEY, position bigint NOT NULL)"
            )
            c.execute(
                f"INSERT INTO {tracking} (name, position) VALUES ({p}, 0) "
                "ON CONFLICT (name) DO NOTHING",
                (tracker,),
            )

    # The position ------------------------------------------------------------------

    def position(self, tracker: str) -> int:
        with self.transaction(commit=False) as c:
            c.execute(
                f"SELECT position FROM {self.table(TRACKING_TABLE)} WHERE name = {self.p}",
                (tracker,),
            )
            row = c.fetchone()
        return int(row["position"]) if row else 0

    @abstractmethod
    def lock_position(self, c: Any, tracker: str) -> int:
        """Takes the tracking row's lock for the cursor's transaction (other followers
        wait) and returns the position."""

    def set_position(self, c: Any, tracker: str, position: int) -> None:
        c.execute(
            f"UPDATE {self.table(TRACKING_TABLE)} SET position = {self.p} WHERE name = {self.p}",
            (position, tracker),
        )

    # The rows --------------------------------------------------------------------------

    def write_rows(
        self,
        c: Any,
        upserts: Sequence[tuple[UUID, datetime, int]],
        deletes: Sequence[UUID],
    ) -> None:
        """Sets each (dispute, due_at, version) row, its check_at at due_at; deletes the
        rows of `deletes`."""
        p, pending = self.p, self.table(PENDING_TABLE)
        if upserts:
            c.executemany(
                f"INSERT INTO {pending} (dispute_id, due_at, version, check_at) "
                f"VALUES ({p}, {p}, {p}, {p}) "
                "ON CONFLICT (dispute_id) DO UPDATE SET due_at = excluded.due_at, "
                "version = excluded.version, check_at = excluded.check_at",
                [(self.uid(d), self.ts(at), v, self.ts(at)) for d, at, v in upserts],
            )
        if deletes:
            c.executemany(
                f"DELETE FROM {pending} WHERE dispute_id = {p}", [(self.uid(d),) for d in deletes]
            )

    def delete_rows(self, c: Any) -> None:
        c.execute(f"DELETE FROM {self.table(PENDING_TABLE)}")

    def rows(self) -> list[tuple[UUID, datetime, int]]:
        """Every row: (dispute, due_at, version)."""
        with self.transaction(commit=False) as c:
            c.execute(f"SELECT dispute_id, due_at, version FROM {self.table(PENDING_TABLE)}")
            rows = c.fetchall()
        return [
            (self.from_uid(r["dispute_id"]), self.from_ts(r["due_at"]), r["version"])  # type: ignore[misc]
            for r in rows
        ]

    def next_check_at(self) -> datetime | None:
        with self.transaction(commit=False) as c:
            c.execute(f"SELECT MIN(check_at) AS t FROM {self.table(PENDING_TABLE)}")
            row = c.fetchone()
        return self.from_ts(row["t"]) if row else None

    def count_due(self, at: datetime) -> int:
        with self.transaction(commit=False) as c:
            c.execute(
                f"SELECT COUNT(*) AS n FROM {self.table(PENDING_TABLE)} WHERE check_at <= {self.p}",
                (self.ts(at),),
            )
            return int(c.fetchone()["n"])

    def set_check_at(
        self, c: Any, dispute_id: UUID, version: int, check_at: datetime | None
    ) -> None:
        """Only while the row still describes that version: a newer event resets it."""
        p = self.p
        c.execute(
            f"UPDATE {self.table(PENDING_TABLE)} SET check_at = {p} "
            f"WHERE dispute_id = {p} AND version = {p}",
            (self.ts(check_at), self.uid(dispute_id), version),
        )

    @abstractmethod
    def visit_due(self, now: datetime, limit: int, visit: Visit) -> int:
        """Calls `visit` for up to `limit` disputes whose check is due at `now`, soonest
        first, and stores the check_at each visit returns; returns the sum of the time-outs
        the visits fired."""
