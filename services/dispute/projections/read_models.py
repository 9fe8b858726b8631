"""The dashboard read models: tables in the events' database, each with its position.

Each view keeps its tables through a `DashboardRecorder`, one of eventsourcing's tracking
recorders (PostgreSQL's or SQLite's, services.dispute.infrastructure.dashboards) with the
view's tables added, chosen by the backend's Factory. `process_batch` writes the view rows a
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

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking

from ..domain import Dispute
from ..infrastructure.backend import recorders_of
from ..infrastructure.dashboards import DashboardRecorder, Table
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


class DashboardView(ABC):
    """What a view does, whatever the database; its recorder stores it."""

    name: ClassVar[str]  # also names the tracking table: <name>_tracking
    tables: ClassVar[Sequence[Table]]

    def __init__(self, app_or_datastore: Any) -> None:
        self.recorder: DashboardRecorder = recorders_of(app_or_datastore).dashboard_recorder(
            self.name, self.tables
        )

    @property
    def datastore(self) -> Any:
        return self.recorder.datastore

    def create_table(self) -> None:
        self.recorder.create_table()

    def max_tracking_id(self, application_name: str) -> int | None:
        """The view's position: the last notification id it has processed."""
        return self.recorder.max_tracking_id(application_name)

    def count_notifications_after(self, events_table: str, position: int | None) -> int:
        """How many events of the application's log come after `position`."""
        return self.recorder.count_notifications_after(events_table, position)

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
        r = self.recorder
        with r.transaction(commit=True) as curs:
            current = r.lock_position(curs, tracking.application_name)
            if current != expected:
                raise PositionMoved(f"{self.name}: at {current}, batch read after {expected}")
            r.write_tracking(curs, tracking)
            if events:
                self.apply(curs, events)

    def clear(self, application_name: str) -> None:
        """Empties the view's tables and forgets its position, in one transaction."""
        r = self.recorder
        with r.transaction(commit=True) as curs:
            for table in self.tables:
                r.delete_all(curs, table)
            r.forget_position(curs, application_name)

    def drop(self, application_name: str) -> None:
        """Drops the view's tables and forgets its position (a rebuild then recreates the
        tables: for changed columns). The tracking table itself stays."""
        r = self.recorder
        with r.transaction(commit=True) as curs:
            for table in self.tables:
                r.drop(curs, table)
            r.forget_position(curs, application_name)

    def dump(self) -> dict[str, list[Row]]:
        """Every row of every table of the view, in key order (for checks and tests)."""
        r = self.recorder
        with r.transaction(commit=False) as curs:
            return {
                table.name: r.select(curs, table, f"ORDER BY {', '.join(table.key)}")
                for table in self.tables
            }


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
            for row in self.recorder.select_in(curs, self.summary, "dispute_id", ids)
        }
        pending: dict[str, list[Row]] = {}
        for event in events:
            dispute_id = str(event.originator_id)
            rows[dispute_id] = fold_summary(rows.get(dispute_id), event)
            pending[dispute_id] = deadline_rows(dispute_id, event.deadlines)
        self.recorder.upsert(curs, self.summary, [rows[i] for i in ids])
        self.recorder.delete_in(curs, self.deadlines, "dispute_id", ids)
        self.recorder.upsert(curs, self.deadlines, [d for i in ids for d in pending[i]])


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
            for row in self.recorder.select_in(curs, self.states, "dispute_id", ids)
        }
        counts: Counter[tuple[str, str, str]] = Counter()
        for event in events:
            dispute_id = str(event.originator_id)
            states[dispute_id] = fold_daily(states.get(dispute_id), event, counts)
        self.recorder.upsert(
            curs, self.states, [{"dispute_id": i, "state": states[i]} for i in ids]
        )
        self.recorder.add_counts(
            curs,
            self.counts,
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
            for row in self.recorder.select_in(curs, self.orders, "order_key", keys)
        }
        chargebacks: dict[tuple[str, str], Row] = {}
        for event in events:
            fold_orders(rows, chargebacks, event)
        self.recorder.upsert(curs, self.orders, [rows[k] for k in keys if k in rows])
        self.recorder.upsert(curs, self.chargebacks, list(chargebacks.values()))


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
            for row in self.recorder.select_in(curs, self.appeals, "dispute_id", ids)
        }
        for event in events:
            key = str(event.originator_id)
            rows[key] = fold_appeal(rows.get(key), event)
        self.recorder.upsert(curs, self.appeals, [row for row in rows.values() if row is not None])


VIEW_NAMES = ("summary", "daily", "orders", "appeals")
VIEWS: dict[str, type[DashboardView]] = {
    "summary": SummaryView,
    "daily": DailyCountsView,
    "orders": OrdersView,
    "appeals": AppealsView,
}


def construct_views(app_or_datastore: Any, *, create: bool = True) -> dict[str, DashboardView]:
    """The views, on the datastore the application's events live in."""
    views: dict[str, DashboardView] = {}
    for key, cls in VIEWS.items():
        view = cls(app_or_datastore)
        if create:
            view.create_table()
        views[key] = view
    return views
