"""The dashboard views' tables on PostgreSQL, in the events' schema."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from psycopg.sql import SQL

from ..dashboards import DashboardRecorder, Row, Table
from .tables import serialised_ddl


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class PostgresDashboardRecorder(PostgresTrackingRecorder, DashboardRecorder):
    datastore: PostgresDatastore
    p = "%s"
    column_types = {"text": "text", "int": "bigint", "ts": "timestamptz", "bool": "boolean"}

    def __init__(self, datastore: PostgresDatastore, view_name: str, tables: Sequence[Table]):
        self.view_name = view_name
        self.tables = tables
        super().__init__(datastore, tracking_table_name=f"{view_name}_tracking")
        self.sql_create_statements += [SQL(s).format() for s in self.create_statements()]

    def create_table(self) -> None:
        # The projector and every service process create the views they use.
        with serialised_ddl(self.datastore, self.tracking_table_name):
            super().create_table()

    @property
    def tracking_table(self) -> str:
        return self.table(self.tracking_table_name)

    def table(self, name: str) -> str:
        return f"{_quote(self.datastore.schema)}.{_quote(name)}"

    def transaction(self, *, commit: bool) -> AbstractContextManager[Any]:
        return self.datastore.transaction(commit=commit)

    def to_db(self, kind: str, value: Any) -> Any:
        return value

    def from_db(self, kind: str, value: Any) -> Any:
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return value

    def execute(self, curs: Any, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        curs.execute(statement, list(params) or None)
        return list(curs.fetchall()) if curs.description else []

    def execute_many(self, curs: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            curs.executemany(statement, rows)

    def write_tracking(self, curs: Any, tracking: Tracking) -> None:
        self._insert_tracking(curs, tracking)

    def count_notifications_after(self, events_table: str, position: int | None) -> int:
        with self.transaction(commit=False) as curs:
            rows = self.execute(
                curs,
                f"SELECT COUNT(*) AS n FROM {self.table(events_table)} WHERE notification_id > %s",
                [position or 0],
            )
        return int(rows[0]["n"])
