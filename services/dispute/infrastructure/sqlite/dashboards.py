"""The dashboard views' tables on SQLite, in the events' database file."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from ..dashboards import DashboardRecorder, Row, Table


class SQLiteDashboardRecorder(SQLiteTrackingRecorder, DashboardRecorder):
    datastore: SQLiteDatastore
    p = "?"
    column_types = {"text": "TEXT", "int": "INTEGER", "ts": "TEXT", "bool": "INTEGER"}

    def __init__(self, datastore: SQLiteDatastore, view_name: str, tables: Sequence[Table]):
        self.view_name = view_name
        self.tables = tables
        self.tracking_table_name = f"{view_name}_tracking"
        super().__init__(datastore)
        # The library names its table `tracking`; each view has its own.
        t = self.tracking_table_name
        self.insert_tracking_statement = self.insert_tracking_statement.replace(
            "INSERT INTO tracking ", f"INSERT INTO {t} "
        ).replace("WHERE tracking.", f"WHERE {t}.")
        self.select_max_tracking_id_statement = self.select_max_tracking_id_statement.replace(
            "FROM tracking ", f"FROM {t} "
        )

    def construct_create_table_statements(self) -> list[str]:
        statements = [
            s.replace("CREATE TABLE IF NOT EXISTS tracking (",
                      f"CREATE TABLE IF NOT EXISTS {self.tracking_table_name} (")
            for s in super().construct_create_table_statements()
        ]  # fmt: skip
        return statements + self.create_statements()

    @property
    def tracking_table(self) -> str:
        return self.tracking_table_name

    def table(self, name: str) -> str:
        return name

    def transaction(self, *, commit: bool) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=commit)

    def to_db(self, kind: str, value: Any) -> Any:
        if value is not None and kind == "ts":
            return value.astimezone(UTC).isoformat(timespec="microseconds")
        return value

    def from_db(self, kind: str, value: Any) -> Any:
        if value is None:
            return None
        if kind == "ts":
            return datetime.fromisoformat(value).astimezone(UTC)
        if kind == "bool":
            return bool(value)
        return value

    def execute(self, curs: Any, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        curs.execute(statement, list(params))
        return [dict(zip(r.keys(), r, strict=True)) for r in curs.fetchall()]

    def execute_many(self, curs: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            curs.executemany(statement, rows)

    def write_tracking(self, curs: Any, tracking: Tracking) -> None:
        self._insert_tracking(curs, tracking)

    def count_notifications_after(self, events_table: str, position: int | None) -> int:
        with self.transaction(commit=False) as curs:
            rows = self.execute(
                curs,
                f"SELECT COUNT(*) AS n FROM {events_table} WHERE rowid > ?",
                [position or 0],
            )
        return int(rows[0]["n"])
