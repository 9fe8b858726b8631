"""The dashboard views: tables in the events' database, each with its tracking position.

Each view is one of eventsourcing's tracking recorders (PostgresTrackingRecorder or
SQLiteTrackingRecorder) with its own tables added. `process_batch` writes the view rows a
batch of events leads to and the position of the batch's last notification in one
transaction, so the view never holds an event twice or misses one, whenever the process
dies. The position is also a guard: the transaction first locks the view's tracking row
and checks it still holds the position the batch was read after, so two projectors (or a
projector and a rebuild) racing on one view never both apply a batch.

Four views, each rebuilt on its own:
- `summary`: `dashboard_disputes` (one row per dispute) and `dashboard_deadlines` (the
  pending deadlines of every dispute, from the latest event's `deadlines`);
- `daily`: `dashboard_daily_counts` (per UTC day: disputes opened by reason, entering each
  state, closed by outcome) and `dashboard_daily_state` (each dispute's last state, which
  the counts need to see a change of state);
- `orders`: `dashboard_orders` (one row per registered order, with its dispute and the
  dispute's reason: a seller's dispute rate and mix of reasons) and
  `dashboard_chargebacks` (one row per chargeback, double recoveries flagged);
- `appeals`: `dashboard_appeals` (one row per ruling made with an appeal window: whether
  it was appealed, by whom, and whether the appeal overturned it).

The projector hands every view the batch's Dispute and Order events; each view folds the
ones it reads.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL

from ..domain import Dispute
from ..infrastructure.postgres import serialised_ddl
from .fold import (
    APPEAL_COLUMNS,
    APPEAL_EVENTS,
    CHARGEBACK_COLUMNS,
    DAILY_COLUMNS,
    DAILY_STATE_COLUMNS,
    DEADLINE_COLUMNS,
    ORDER_COLUMNS,
    SUMMARY_COLUMNS,
    Row,
    deadline_rows,
    fold_appeal,
    fold_daily,
    fold_orders,
    fold_summary,
    order_key_of,
)

SUMMARY_TABLE = "dashboard_disputes"
DEADLINES_TABLE = "dashboard_deadlines"
DAILY_TABLE = "dashboard_daily_counts"
DAILY_STATE_TABLE = "dashboard_daily_state"
ORDERS_TABLE = "dashboard_orders"
CHARGEBACKS_TABLE = "dashboard_chargebacks"
APPEALS_TABLE = "dashboard_appeals"


class PositionMoved(Exception):
    """The view's position is not the one the batch was read after: read again."""


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


class DashboardView(ABC):
    """What a view does, whatever the database. The backends below supply the SQL plumbing."""

    name: str  # also names the tracking table: <name>_tracking
    tables: Sequence[Table]

    # Storage plumbing, provided by a backend mixin ---------------------------------------

    @abstractmethod
    def transaction(self, *, commit: bool) -> AbstractContextManager[Any]: ...

    @abstractmethod
    def table(self, name: str) -> str:
        """The table's name as it appears in SQL (schema-qualified on PostgreSQL)."""

    @abstractmethod
    def to_db(self, kind: str, value: Any) -> Any: ...

    @abstractmethod
    def from_db(self, kind: str, value: Any) -> Any: ...

    @abstractmethod
    def execute(self, curs: Any, statement: str, params: Sequence[Any] = ()) -> list[Row]: ...

    @abstractmethod
    def execute_many(self, curs: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def write_tracking(self, curs: Any, tracking: Tracking) -> None: ...

    @abstractmethod
    def column_type(self, kind: str) -> str: ...

    @property
    @abstractmethod
    def tracking_table(self) -> str: ...

    @abstractmethod
    def max_tracking_id(self, application_name: str) -> int | None:
        """The view's position: the last notification id it has processed."""

    @abstractmethod
    def create_table(self) -> None: ...

    @abstractmethod
    def count_notifications_after(self, events_table: str, position: int | None) -> int:
        """How many events of the application's log come after `position`."""

    # What the view does with a batch -----------------------------------------------------

    @abstractmethod
    def apply(self, curs: Any, events: Sequence[Any]) -> None:
        """Writes the rows the events lead to (inside the batch's transaction); `events`
        are the batch's Dispute and Order events, in order."""

    def process_batch(
        self,
        expected: int | None,
        tracking: Tracking,
        events: Sequence[Any],
    ) -> None:
        """Applies the events and records `tracking`, in one transaction, provided the
        view is still at `expected` (the position the batch was read after)."""
        with self.transaction(commit=True) as curs:
            # Lock the position first: on PostgreSQL the row, on SQLite the database (a
            # write as the first statement takes the write lock before anything is read).
            self.execute(
                curs,
                f"UPDATE {self.tracking_table} SET notification_id = notification_id "
                "WHERE application_name = %s",
                [tracking.application_name],
            )
            found = self.execute(
                curs,
                f"SELECT notification_id FROM {self.tracking_table} WHERE application_name = %s",
                [tracking.application_name],
            )
            current = found[0]["notification_id"] if found else None
            if current != expected:
                raise PositionMoved(f"{self.name}: at {current}, batch read after {expected}")
            self.write_tracking(curs, tracking)
            if events:
                self.apply(curs, events)

    def clear(self, application_name: str) -> None:
        """Empties the view's tables and forgets its position, in one transaction."""
        with self.transaction(commit=True) as curs:
            for table in self.tables:
                self.execute(curs, f"DELETE FROM {self.table(table.name)}")
            self.execute(
                curs,
                f"DELETE FROM {self.tracking_table} WHERE application_name = %s",
                [application_name],
            )

    def drop(self, application_name: str) -> None:
        """Drops the view's tables and forgets its position (a rebuild then recreates the
        tables: for changed columns). The tracking table itself stays."""
        with self.transaction(commit=True) as curs:
            for table in self.tables:
                self.execute(curs, f"DROP TABLE IF EXISTS {self.table(table.name)}")
            self.execute(
                curs,
                f"DELETE FROM {self.tracking_table} WHERE application_name = %s",
                [application_name],
            )

    def dump(self) -> dict[str, list[Row]]:
        """Every row of every table of the view, in key order (for checks and tests)."""
        with self.transaction(commit=False) as curs:
            return {
                table.name: self.select(curs, table, f"ORDER BY {', '.join(table.key)}")
                for table in self.tables
            }

    # Helpers -----------------------------------------------------------------------------

    def create_statements(self) -> list[str]:
        statements = []
        for table in self.tables:
            columns = ", ".join(
                f"{name} {self.column_type(kind)}" for name, kind in table.columns.items()
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

    def select(
        self, curs: Any, table: Table, where: str = "", params: Sequence[Any] = ()
    ) -> list[Row]:
        columns = ", ".join(table.columns)
        rows = self.execute(curs, f"SELECT {columns} FROM {self.table(table.name)} {where}", params)
        return [self.decode(table.columns, row) for row in rows]

    def decode(self, kinds: Mapping[str, str], row: Mapping[str, Any]) -> Row:
        return {k: self.from_db(kinds.get(k, "raw"), v) for k, v in row.items()}

    def upsert(self, curs: Any, table: Table, rows: Sequence[Row]) -> None:
        if not rows:
            return
        names = list(table.columns)
        updates = [n for n in names if n not in table.key]
        statement = (
            f"INSERT INTO {self.table(table.name)} ({', '.join(names)}) "
            f"VALUES ({', '.join(['%s'] * len(names))}) "
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

    @staticmethod
    def placeholders(values: Sequence[Any]) -> str:
        return ", ".join(["%s"] * len(values))


class SummaryView(DashboardView):
    name = "dashboard_summary"
    summary = Table(
        SUMMARY_TABLE,
        SUMMARY_COLUMNS,
        ["dispute_id"],
        indexes=[
            ["opened_at", "dispute_id"],
            ["seller_id", "opened_at"],
            ["buyer_id", "opened_at"],
            ["state", "opened_at"],
            ["next_deadline_at"],
        ],
    )
    deadlines = Table(
        DEADLINES_TABLE, DEADLINE_COLUMNS, ["dispute_id", "kind"], [["kind", "due_at"], ["due_at"]]
    )
    tables = (summary, deadlines)

    def apply(self, curs: Any, events: Sequence[Any]) -> None:
        events = [e for e in events if isinstance(e, Dispute.Event)]
        if not events:
            return
        ids = list(dict.fromkeys(str(e.originator_id) for e in events))
        rows: dict[str, Row] = {
            row["dispute_id"]: row
            for row in self.select(
                curs, self.summary, f"WHERE dispute_id IN ({self.placeholders(ids)})", ids
            )
        }
        pending: dict[str, list[Row]] = {}
        for event in events:
            dispute_id = str(event.originator_id)
            rows[dispute_id] = fold_summary(rows.get(dispute_id), event)
            pending[dispute_id] = deadline_rows(dispute_id, event.deadlines)
        self.upsert(curs, self.summary, [rows[i] for i in ids])
        self.execute(
            curs,
            f"DELETE FROM {self.table(DEADLINES_TABLE)} "
            f"WHERE dispute_id IN ({self.placeholders(ids)})",
            ids,
        )
        self.upsert(curs, self.deadlines, [d for i in ids for d in pending[i]])


class DailyCountsView(DashboardView):
    name = "dashboard_daily"
    counts = Table(DAILY_TABLE, DAILY_COLUMNS, ["day", "metric", "key"])
    states = Table(DAILY_STATE_TABLE, DAILY_STATE_COLUMNS, ["dispute_id"])
    tables = (counts, states)

    def apply(self, curs: Any, events: Sequence[Any]) -> None:
        events = [e for e in events if isinstance(e, Dispute.Event)]
        if not events:
            return
        ids = list(dict.fromkeys(str(e.originator_id) for e in events))
        states: dict[str, str | None] = {
            row["dispute_id"]: row["state"]
            for row in self.select(
                curs, self.states, f"WHERE dispute_id IN ({self.placeholders(ids)})", ids
            )
        }
        counts: Counter[tuple[str, str, str]] = Counter()
        for event in events:
            dispute_id = str(event.originator_id)
            states[dispute_id] = fold_daily(states.get(dispute_id), event, counts)
        self.upsert(curs, self.states, [{"dispute_id": i, "state": states[i]} for i in ids])
        table = self.table(DAILY_TABLE)
        self.execute_many(
            curs,
            f"INSERT INTO {table} AS c (day, metric, key, n) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (day, metric, key) DO UPDATE SET n = c.n + excluded.n",
            [[day, metric, key, n] for (day, metric, key), n in sorted(counts.items())],
        )


class OrdersView(DashboardView):
    name = "dashboard_orders"
    orders = Table(ORDERS_TABLE, ORDER_COLUMNS, ["order_key"], [["seller_id"]])
    chargebacks = Table(
        CHARGEBACKS_TABLE,
        CHARGEBACK_COLUMNS,
        ["order_key", "reference"],
        [["double_recovery", "recorded_at"], ["seller_id"]],
    )
    tables = (orders, chargebacks)

    def apply(self, curs: Any, events: Sequence[Any]) -> None:
        keys = list(dict.fromkeys(k for e in events if (k := order_key_of(e)) is not None))
        if not keys:
            return
        rows: dict[str, Row] = {
            row["order_key"]: row
            for row in self.select(
                curs, self.orders, f"WHERE order_key IN ({self.placeholders(keys)})", keys
            )
        }
        chargebacks: dict[tuple[str, str], Row] = {}
        for event in events:
            fold_orders(rows, chargebacks, event)
        self.upsert(curs, self.orders, [rows[k] for k in keys if k in rows])
        self.upsert(curs, self.chargebacks, list(chargebacks.values()))


class AppealsView(DashboardView):
    name = "dashboard_appeals"
    appeals = Table(APPEALS_TABLE, APPEAL_COLUMNS, ["dispute_id"], [["ruled_at"]])
    tables = (appeals,)

    def apply(self, curs: Any, events: Sequence[Any]) -> None:
        events = [e for e in events if isinstance(e, APPEAL_EVENTS)]
        if not events:
            return
        ids = list(dict.fromkeys(str(e.originator_id) for e in events))
        rows: dict[str, Row | None] = {
            row["dispute_id"]: row
            for row in self.select(
                curs, self.appeals, f"WHERE dispute_id IN ({self.placeholders(ids)})", ids
            )
        }
        for event in events:
            key = str(event.originator_id)
            rows[key] = fold_appeal(rows.get(key), event)
        self.upsert(curs, self.appeals, [row for row in rows.values() if row is not None])


# Backends --------------------------------------------------------------------------------

_PG_TYPES = {"text": "text", "int": "bigint", "ts": "timestamptz", "bool": "boolean"}
_SQLITE_TYPES = {"text": "TEXT", "int": "INTEGER", "ts": "TEXT", "bool": "INTEGER"}


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class PostgresBackend(PostgresTrackingRecorder):
    """The SQL plumbing of a view on PostgreSQL, in the events' schema."""

    name: str
    create_statements: Any

    def __init__(self, datastore: PostgresDatastore) -> None:
        super().__init__(datastore, tracking_table_name=f"{self.name}_tracking")
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

    def column_type(self, kind: str) -> str:
        return _PG_TYPES[kind]

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


_PARAM = re.compile(r"%s")


class SQLiteBackend(SQLiteTrackingRecorder):
    """The SQL plumbing of a view on SQLite, in the events' database file."""

    name: str
    create_statements: Any

    def __init__(self, datastore: SQLiteDatastore) -> None:
        self.tracking_table_name = f"{self.name}_tracking"
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

    def column_type(self, kind: str) -> str:
        return _SQLITE_TYPES[kind]

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
        curs.execute(_PARAM.sub("?", statement), list(params))
        return [dict(zip(r.keys(), r, strict=True)) for r in curs.fetchall()]

    def execute_many(self, curs: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            curs.executemany(_PARAM.sub("?", statement), rows)

    def write_tracking(self, curs: Any, tracking: Tracking) -> None:
        self._insert_tracking(curs, tracking)

    def count_notifications_after(self, events_table: str, position: int | None) -> int:
        with self.transaction(commit=False) as curs:
            rows = self.execute(
                curs,
                f"SELECT COUNT(*) AS n FROM {events_table} WHERE rowid > %s",
                [position or 0],
            )
        return int(rows[0]["n"])


# The backend comes first, so that its plumbing (and the library's tracking methods)
# implement the abstract methods of DashboardView.
class PostgresSummaryView(PostgresBackend, SummaryView):
    pass


class PostgresDailyCountsView(PostgresBackend, DailyCountsView):
    pass


class SQLiteSummaryView(SQLiteBackend, SummaryView):
    pass


class SQLiteDailyCountsView(SQLiteBackend, DailyCountsView):
    pass


class PostgresOrdersView(PostgresBackend, OrdersView):
    pass


class PostgresAppealsView(PostgresBackend, AppealsView):
    pass


class SQLiteOrdersView(SQLiteBackend, OrdersView):
    pass


class SQLiteAppealsView(SQLiteBackend, AppealsView):
    pass


VIEW_NAMES = ("summary", "daily", "orders", "appeals")
_BY_BACKEND: dict[str, dict[str, type[Any]]] = {
    "postgres": {
        "summary": PostgresSummaryView,
        "daily": PostgresDailyCountsView,
        "orders": PostgresOrdersView,
        "appeals": PostgresAppealsView,
    },
    "sqlite": {
        "summary": SQLiteSummaryView,
        "daily": SQLiteDailyCountsView,
        "orders": SQLiteOrdersView,
        "appeals": SQLiteAppealsView,
    },
}


def construct_views(
    datastore: PostgresDatastore | SQLiteDatastore, *, create: bool = True
) -> dict[str, DashboardView]:
    """The views, on the datastore the application's events live in."""
    backend = "postgres" if isinstance(datastore, PostgresDatastore) else "sqlite"
    views: dict[str, DashboardView] = {}
    for key, cls in _BY_BACKEND[backend].items():
        view = cls(datastore)
        if create:
            view.create_table()
        views[key] = view
    return views
