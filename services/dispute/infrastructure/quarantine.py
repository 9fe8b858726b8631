"""The quarantine table: `dispute_quarantine`, one row per reader and log position of an
event that reader could not apply (services.dispute.quarantine says why it exists)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .tables import TableRecorder

QUARANTINE_TABLE = "dispute_quarantine"
COLUMNS = "reader, position, topic, stream_id, version, error, quarantined_at"


class QuarantineRecorder(TableRecorder):
    def create_table(self) -> None:
        with self.ddl() as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table(QUARANTINE_TABLE)} ("
                "reader text NOT NULL, position bigint NOT NULL, topic text NOT NULL, "
                "stream_id text NOT NULL, version bigint NOT NULL, error text NOT NULL, "
                f"quarantined_at {self.ts_type} NOT NULL, PRIMARY KEY (reader, position))"
            )

    def record(self, row: Sequence[Any], cursor: Any = None) -> None:
        """Inserts (or refreshes) one row of COLUMNS, in `cursor`'s transaction if given;
        its last value is a time."""
        p = self.p
        values = (*row[:-1], self.ts(row[-1]))
        statement = (
            f"INSERT INTO {self.table(QUARANTINE_TABLE)} ({COLUMNS}) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (reader, position) "
            "DO UPDATE SET error = excluded.error, quarantined_at = excluded.quarantined_at"
        )
        if cursor is not None:
            cursor.execute(statement, values)
        else:
            with self.transaction(commit=True) as c:
                c.execute(statement, values)

    def count(self, reader: str | None) -> int:
        where, params = (f"WHERE reader = {self.p}", (reader,)) if reader else ("", ())
        with self.transaction(commit=False) as c:
            c.execute(f"SELECT count(*) AS n FROM {self.table(QUARANTINE_TABLE)} {where}", params)
            return int(c.fetchone()["n"])

    def entries(self, reader: str | None) -> list[dict[str, Any]]:
        """The rows (of one reader, or all), by reader and position; times decoded."""
        where, params = (f"WHERE reader = {self.p}", (reader,)) if reader else ("", ())
        with self.transaction(commit=False) as c:
            c.execute(
                f"SELECT {COLUMNS} FROM {self.table(QUARANTINE_TABLE)} {where} "
                "ORDER BY reader, position",
                params,
            )
            rows = c.fetchall()
        return [
            {
                **{k: r[k] for k in COLUMNS.split(", ")},
                "quarantined_at": self.from_ts(r["quarantined_at"]),
            }
            for r in rows
        ]

    def release(self, reader: str) -> list[int]:
        """Deletes the reader's rows; returns their positions."""
        p, table = self.p, self.table(QUARANTINE_TABLE)
        with self.transaction(commit=True) as c:
            c.execute(
                f"SELECT position FROM {table} WHERE reader = {p} ORDER BY position", (reader,)
            )
            positions = [int(r["position"]) for r in c.fetchall()]
            c.execute(f"DELETE FROM {table} WHERE reader = {p}", (reader,))
        return positions
