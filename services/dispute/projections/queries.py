"""What the dashboards and `GET /v1/disputes` ask the views (read-only).

Every answer comes from the views, which follow the event log: `lag()` says how far
behind it they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from eventsourcing.application import Application

from shared.permissions import SEES_EVERYTHING

from ..domain import InvalidInput
from ..domain.values import Actor, Role
from .cursors import decode_cursor, encode_cursor
from .figures import AppealFigures, ChargebackFigures, FigureQueries, SellerFigures
from .fold import CLOSED, DEADLINE_COLUMNS, ENTERED, OPENED, SUMMARY_COLUMNS, Row
from .projector import views_of
from .read_models import (
    DEADLINES_TABLE,
    SUMMARY_TABLE,
    AppealsView,
    DailyCountsView,
    DashboardView,
    OrdersView,
    SummaryView,
)

__all__ = [
    "AppealFigures",
    "ChargebackFigures",
    "DashboardQueries",
    "DisputeFilters",
    "DisputePage",
    "SellerFigures",
    "decode_cursor",
    "encode_cursor",
]

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class DisputeFilters:
    """The filters of `GET /v1/disputes`; every one given must hold (AND)."""

    state: str | Sequence[str] | None = None
    reason: str | Sequence[str] | None = None
    seller_id: str | None = None
    buyer_id: str | None = None
    opened_from: datetime | None = None  # inclusive
    opened_to: datetime | None = None  # exclusive
    next_deadline_before: datetime | None = None  # next_deadline_at < this

    @classmethod
    def of(cls, filters: DisputeFilters | Mapping[str, Any] | None) -> DisputeFilters:
        if filters is None:
            return cls()
        if isinstance(filters, DisputeFilters):
            return filters
        unknown = set(filters) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "unknown_filter", "no such filter")
        return cls(**filters)


@dataclass(frozen=True)
class DisputePage:
    items: list[Row]
    next_cursor: str | None  # None on the last page


class DashboardQueries:
    def __init__(
        self, app: Application[Any], views: Mapping[str, DashboardView] | None = None
    ) -> None:
        self.app = app
        self.views = dict(views) if views is not None else views_of(app)
        summary, daily = self.views["summary"], self.views["daily"]
        orders, appeals = self.views["orders"], self.views["appeals"]
        assert isinstance(summary, SummaryView) and isinstance(daily, DailyCountsView)
        assert isinstance(orders, OrdersView) and isinstance(appeals, AppealsView)
        self.summary: SummaryView = summary
        self.daily: DailyCountsView = daily
        self.orders: OrdersView = orders
        self.appeals: AppealsView = appeals
        self.figures = FigureQueries(summary, orders, appeals)

    # GET /v1/disputes ----------------------------------------------------------------

    def list_disputes(
        self,
        filters: DisputeFilters | Mapping[str, Any] | None = None,
        cursor: str | None = None,
        limit: int = DEFAULT_LIMIT,
        *,
        viewer: Actor,
    ) -> DisputePage:
        """Disputes newest first (opened_at, then id, both descending), a page at a time.

        A buyer or seller sees only its own disputes whatever the filters say. `cursor`
        is the `next_cursor` of the previous page (opaque); pages stay stable while
        disputes are added, since a new dispute sorts before every cursor.
        """
        f = DisputeFilters.of(filters)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput("limit", "range", f"limit must be 1 to {MAX_LIMIT}")
        buyer_id, seller_id = f.buyer_id, f.seller_id
        if viewer.role == Role.BUYER:
            if buyer_id not in (None, viewer.id):
                return DisputePage([], None)
            buyer_id = viewer.id
        elif viewer.role == Role.SELLER:
            if seller_id not in (None, viewer.id):
                return DisputePage([], None)
            seller_id = viewer.id
        elif viewer.role not in SEES_EVERYTHING:
            return DisputePage([], None)
        v, p = self.summary.recorder, self.summary.recorder.p
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("state", f.state), ("reason", f.reason)):
            if value is not None:
                values = [value] if isinstance(value, str) else list(value)
                where.append(f"{column} IN ({v.placeholders(values)})")
                params += values
        for column, value in (("seller_id", seller_id), ("buyer_id", buyer_id)):
            if value is not None:
                where.append(f"{column} = {p}")
                params.append(value)
        for name, condition, at in (
            ("opened_from", f"opened_at >= {p}", f.opened_from),
            ("opened_to", f"opened_at < {p}", f.opened_to),
            ("next_deadline_before", f"next_deadline_at < {p}", f.next_deadline_before),
        ):
            if at is not None:
                where.append(condition)
                params.append(v.to_db("ts", _aware(at, name)))
        if cursor is not None:
            opened_at, dispute_id = decode_cursor(cursor)
            where.append(f"(opened_at < {p} OR (opened_at = {p} AND dispute_id < {p}))")
            params += [v.to_db("ts", opened_at), v.to_db("ts", opened_at), dispute_id]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with v.transaction(commit=False) as curs:
            rows = v.select(
                curs,
                self.summary.summary,
                f"{clause} ORDER BY opened_at DESC, dispute_id DESC LIMIT {limit + 1}",
                params,
            )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["opened_at"], rows[-1]["dispute_id"]) if more else None
        return DisputePage(rows, next_cursor)

    def get_summary(self, dispute_id: str) -> Row | None:
        v = self.summary.recorder
        with v.transaction(commit=False) as curs:
            rows = v.select(
                curs, self.summary.summary, f"WHERE dispute_id = {v.p}", [str(dispute_id)]
            )
        return rows[0] if rows else None

    # Figures (services.dispute.projections.figures) ------------------------------------

    def seller_figures(self, seller_id: str | None = None) -> list[SellerFigures]:
        return self.figures.seller_figures(seller_id)

    def appeal_figures(self) -> AppealFigures:
        return self.figures.appeal_figures()

    def chargeback_figures(self, limit: int = 100) -> ChargebackFigures:
        return self.figures.chargeback_figures(limit)

    def counts_by_state(self) -> dict[str, int]:
        return self._count_by("state")

    def counts_by_outcome(self) -> dict[str, int]:
        return self._count_by("outcome", "WHERE outcome IS NOT NULL")

    def _count_by(self, column: str, where: str = "") -> dict[str, int]:
        v = self.summary.recorder
        with v.transaction(commit=False) as curs:
            rows = v.execute(
                curs,
                f"SELECT {column} AS k, COUNT(*) AS n FROM {v.table(SUMMARY_TABLE)} {where} "
                f"GROUP BY {column} ORDER BY {column}",
            )
        return {row["k"]: int(row["n"]) for row in rows}

    def daily_counts(self, start: date | str, end: date | str) -> list[dict[str, Any]]:
        """Per UTC day from `start` to `end` inclusive, days with anything only: disputes
        opened (by reason), disputes entering each state, disputes closed (by outcome)."""
        v = self.daily.recorder
        first, last = _day(start, "start"), _day(end, "end")
        with v.transaction(commit=False) as curs:
            rows = v.select(
                curs,
                self.daily.counts,
                f"WHERE day >= {v.p} AND day <= {v.p} ORDER BY day",
                [first, last],
            )
        days: dict[str, dict[str, Any]] = {}
        for row in rows:
            entry = days.setdefault(
                row["day"], {"day": row["day"], OPENED: {}, ENTERED: {}, CLOSED: {}}
            )
            entry[row["metric"]][row["key"]] = int(row["n"])
        return list(days.values())

    # Deadlines -----------------------------------------------------------------------

    def deadlines_due(self, now: datetime, within: timedelta = timedelta(hours=24)) -> list[Row]:
        """Pending deadlines falling due from `now` to `now + within`, soonest first."""
        at = _aware(now, "now")
        p = self.summary.recorder.p
        return self._deadlines(f"d.due_at >= {p} AND d.due_at < {p}", [at, at + within])

    def sla_breaches(self, now: datetime) -> list[Row]:
        """Reviews and appeals whose ruling is past its SLA (7 business days from the
        escalation or the appeal) at `now`."""
        p = self.summary.recorder.p
        return self._deadlines(
            f"d.kind IN ('ruling', 'appeal_ruling') AND d.due_at < {p}", [_aware(now, "now")]
        )

    def payouts_overdue(self, now: datetime) -> list[Row]:
        """Refunds still pending after their expected payout date at `now`."""
        p = self.summary.recorder.p
        return self._deadlines(
            f"d.kind = 'refund_payout' AND s.state = 'refund_pending' AND d.due_at < {p}",
            [_aware(now, "now")],
        )

    def _deadlines(self, condition: str, times: list[datetime]) -> list[Row]:
        """`condition` is written with the recorder's placeholder."""
        v = self.summary.recorder
        kinds = {**DEADLINE_COLUMNS, **SUMMARY_COLUMNS}
        with v.transaction(commit=False) as curs:
            rows = v.execute(
                curs,
                "SELECT d.dispute_id, d.kind, d.due_from, d.due_at, s.state, s.reason, "
                "s.buyer_id, s.seller_id, s.opened_at, s.escalated_at, s.currency, "
                "s.order_amount, s.refund_amount, s.payment_method, s.refund_failures "
                f"FROM {v.table(DEADLINES_TABLE)} d "
                f"JOIN {v.table(SUMMARY_TABLE)} s ON s.dispute_id = d.dispute_id "
                f"WHERE {condition} ORDER BY d.due_at, d.dispute_id, d.kind",
                [v.to_db("ts", t) for t in times],
            )
        return [v.decode(kinds, row) for row in rows]

    # How far behind ------------------------------------------------------------------

    def lag(self) -> dict[str, Any]:
        """How far behind the event log each view is: in events, and in event time (the
        newest event's time minus the time of the last event the view has processed)."""
        head = self.app.recorder.max_notification_id()
        newest = self._event_time(head)
        views: dict[str, dict[str, Any]] = {}
        for name, view in self.views.items():
            position = view.max_tracking_id(self.app.name)
            behind = view.count_notifications_after(_events_table(self.app), position)
            seconds = 0.0
            if behind and newest is not None:
                processed_at = self._event_time(position) if position else self._event_time(None)
                if processed_at is not None:
                    seconds = max(0.0, (newest - processed_at).total_seconds())
            views[name] = {"position": position, "events_behind": behind, "seconds_behind": seconds}
        return {
            "head": head,
            "events_behind": max(v["events_behind"] for v in views.values()),
            "seconds_behind": max(v["seconds_behind"] for v in views.values()),
            "views": views,
        }

    def _event_time(self, notification_id: int | None) -> datetime | None:
        """The time of the event at `notification_id` (None: the first event)."""
        found = self.app.recorder.select_notifications(start=notification_id, limit=1)
        if not found:
            return None
        event = self.app.mapper.to_domain_event(found[0])
        timestamp: datetime = event.timestamp  # type: ignore[attr-defined]
        return timestamp.astimezone(UTC)


def _aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(name, "aware_datetime", f"{name} must be a time with a zone")
    return value.astimezone(UTC)


def _day(value: date | str, name: str) -> str:
    try:
        day = value if isinstance(value, date) else date.fromisoformat(value)
    except (TypeError, ValueError):
        raise InvalidInput(name, "date", f"{name} must be a date (YYYY-MM-DD)") from None
    if isinstance(day, datetime):
        day = day.astimezone(UTC).date()
    return day.isoformat()


def _events_table(app: Application[Any]) -> str:
    return str(app.recorder.events_table_name)  # type: ignore[attr-defined]
