"""The dashboard views' tables: one tracking recorder per view, one subclass per backend.

Each view (services.dispute.projections.read_models) stores its rows in tables described
by `Table` (columns of kinds `text`, `int`, `ts`, `bool`), and its position in a tracking
table of its own, `<view name>_tracking`, the library's. The statements every view needs
(create, select, upsert, delete, the position guard) are made here from the tables'
descriptions with the backend's placeholder and column types; the backend classes
(`postgres.dashboards`, `sqlite.dashboards`) subclass the library's tracking recorders.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking, TrackingRecorder

Row = dict[str, Any]


class Table:
    def __init__(
        self,
        name: str,
        columns: Mapping[str, str],
        key: Sequence[str],
        indexes: Sequence[Sequence[str]] = (),
    ) -> None:
        self.name = name
        self.columns = dict(columns)
        self.key = tuple(key)
        self.indexes = [tuple(i) for i in indexes]


class DashboardRecorder(TrackingRecorder):
    """A view's tables and its position, on the events' datastore."""

    p: ClassVar[str]  # the driver's placeholder
    column_types: ClassVar[Mapping[str, str]]  # a column's kind -> its SQL type

    view_name: str
    tables: Sequence[Table]
    datastore: Any

    # What each backend provides ------------------------------------------------------

    @abstractmethod
    def create_table(self) -> None: ...

    @abstractmethod
    def transaction(self, *, commit: bool) -> AbstractContextManager[Any]: ...

    @abstractmethod
    def table(self, name: str) -> str:
        """The table's name as it appears in SQL (schema-qualified on PostgreSQL)."""

    @property
    @abstractmethod
    def tracking_table(self) -> str: ...

    @abstractmethod
    def to_db(self, kind: str, value: Any) -> Any: ...

    @abstractmethod
    def from_db(self, kind: str, value: Any) -> Any: ...

    @abstractmethod
    def execute(self, curs: Any, statement: str, params: Sequence[Any] = ()) -> list[Row]:
        """Runs one statement; returns its rows as dicts (none for a write)."""

    @abstractmethod
    def execute_many(self, curs: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def write_tracking(self, curs: Any, tracking: Tracking) -> None: ...

    @abstractmethod
    def count_notifications_after(self, events_table: str, position: int | None) -> int:
        """How many events of the application's log come after `position`."""

    # The same on both ------------------------------------------------------------------

    def placeholders(self, values: Sequence[Any]) -> str:
        return ", ".join([self.p] * len(values))

    def create_statements(self) -> list[str]:
        statements = []
        for table in self.tables:
            columns = ", ".join(
                f"{name} {self.column_types[kind]}" for name, kind in table.columns.items()
            )
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {self.table(table.name)} "
                f"({columns}, PRIMARY KEY ({', '.join(table.key)}))"
            )
            for cols in table.indexes:
                index = f"{table.name}_{'_'.join(cols)}_idx"
                on = self.table(table.name)
                statements.append(f"CREATE INDEX IF NOT EXISTS {index} ON {on} ({', '.join(cols)})")
        return statements

    def lock_position(self, curs: Any, application_name: str) -> int | None:
        """Locks the view's position for the transaction and returns it: on PostgreSQL
        the row, on SQLite the database (a write as the first statement takes the write
        lock before anything is read)."""
        p = self.p
        self.execute(
            curs,
            f"UPDATE {self.tracking_table} SET notification_id = notification_id "
            f"WHERE application_name = {p}",
            [application_name],
        )
        found = self.execute(
            curs,
            f"SELECT notification_id FROM {self.tracking_table} WHERE application_name = {p}",
            [application_name],
        )
        return found[0]["notification_id"] if found else None

    def forget_position(self, curs: Any, application_name: str) -> None:
        self.execute(
            curs,
            f"DELETE FROM {self.tracking_table} WHERE application_name = {self.p}",
            [application_name],
        )

    def delete_all(self, curs: Any, table: Table) -> None:
        self.execute(curs, f"DELETE FROM {self.table(table.name)}")

    def drop(self, curs: Any, table: Table) -> None:
        self.execute(curs, f"DROP TABLE IF EXISTS {self.table(table.name)}")

    def select(
        self, curs: Any, table: Table, where: str = "", params: Sequence[Any] = ()
    ) -> list[Row]:
        """The table's rows, decoded; `where` may also order and limit them."""
        columns = ", ".join(table.columns)
        rows = self.execute(curs, f"SELECT {columns} FROM {self.table(table.name)} {where}", params)
        return [self.decode(table.columns, row) for row in rows]

    def select_in(self, curs: Any, table: Table, column: str, values: Sequence[Any]) -> list[Row]:
        return self.select(curs, table, f"WHERE {column} IN ({self.placeholders(values)})", values)

    def delete_in(self, curs: Any, table: Table, column: str, values: Sequence[Any]) -> None:
        self.execute(
            curs,
            f"DELETE FROM {self.table(table.name)} WHERE {column} IN ({self.placeholders(values)})",
            values,
        )

    def decode(self, kinds: Mapping[str, str], row: Mapping[str, Any]) -> Row:
        return {k: self.from_db(kinds.get(k, "raw"), v) for k, v in row.items()}

    def upsert(self, curs: Any, table: Table, rows: Sequence[Row]) -> None:
        if not rows:
            return
        names = list(table.columns)
        updates = [n for n in names if n not in table.key]
        statement = (
            f"INSERT INTO {self.table(table.name)} ({', '.join(names)}) "
            f"VALUES ({self.placeholders(names)}) "
            f"ON CONFLICT ({', '.join(table.key)}) DO "
            + (
                "UPDATE SET " + ", ".join(f"{n} = excluded.{n}" for n in updates)
                if updates
                else "NOTHING"
            )
        )
        self.execute_many(
            curs,
            statement,
            [[self.to_db(table.columns[n], row[n]) for n in names] for row in rows],
        )

    def add_counts(self, curs: Any, table: Table, counts: Sequence[Sequence[Any]]) -> None:
        """Adds each (day, metric, key, n) to the count stored for (day, metric, key)."""
        p = self.p
        self.execute_many(
            curs,
            f"INSERT INTO {self.table(table.name)} AS c (day, metric, key, n) "
            f"VALUES ({p}, {p}, {p}, {p}) "
            "ON CONFLICT (day, metric, key) DO UPDATE SET n = c.n + excluded.n",
            counts,
        )
