"""What the dashboards and `GET /v1/disputes` ask the views (read-only).

Every answer comes from the views, which follow the event log: `lag()` says how far
behind it they are.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import statistics
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from eventsourcing.application import Application

from shared.permissions import SEES_EVERYTHING

from ..domain import InvalidInput
from ..domain.values import Actor, Role
from .fold import CLOSED, DEADLINE_COLUMNS, ENTERED, OPENED, SUMMARY_COLUMNS, Row
from .projector import views_of
from .views import (
    APPEALS_TABLE,
    CHARGEBACKS_TABLE,
    DEADLINES_TABLE,
    ORDERS_TABLE,
    SUMMARY_TABLE,
    AppealsView,
    DailyCountsView,
    DashboardView,
    OrdersView,
    SummaryView,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
REFUNDED_OUTCOMES = ("refunded_full", "refunded_partial")


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


@dataclass(frozen=True)
class SellerFigures:
    seller_id: str
    disputes: int
    open: int
    closed: int
    by_reason: dict[str, int]
    timeout_losses: int  # disputes the seller lost by not answering in time
    refunded: int  # closed with a refund paid
    refund_rate: float | None  # refunded / closed (None while nothing is closed)
    amount_refunded: dict[str, int] = field(default_factory=dict)  # currency -> minor units
    responded: int = 0
    median_response_seconds: float | None = None  # opening to the seller's first answer
    orders: int = 0  # orders registered for the seller
    dispute_rate: float | None = None  # disputes per registered order (None: no orders)
    reason_mix: dict[str, float] = field(default_factory=dict)  # each reason's share

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AppealFigures:
    rulings: int  # rulings made with an appeal window
    filed: int
    by_buyer: int
    by_seller: int
    pending: int  # filed, not yet decided
    decided: int
    overturned: int  # decided with a ruling unlike the first (decision or amount)
    upheld: int
    overturn_rate: float | None  # overturned / decided
    appeal_rate: float | None  # filed / rulings

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChargebackFigures:
    chargebacks: int
    disputes_closed: int  # open disputes they closed (outcome chargeback)
    without_dispute: int
    double_recoveries: int
    amount: dict[str, int]  # currency -> minor units charged back
    amount_at_risk: dict[str, int]  # currency -> minor units paid twice
    double_recovery_rows: list[Row]  # newest first


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
        v = self.summary
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("state", f.state), ("reason", f.reason)):
            if value is not None:
                values = [value] if isinstance(value, str) else list(value)
                where.append(f"{column} IN ({v.placeholders(values)})")
                params += values
        for column, value in (("seller_id", seller_id), ("buyer_id", buyer_id)):
            if value is not None:
                where.append(f"{column} = %s")
                params.append(value)
        for name, condition, at in (
            ("opened_from", "opened_at >= %s", f.opened_from),
            ("opened_to", "opened_at < %s", f.opened_to),
            ("next_deadline_before", "next_deadline_at < %s", f.next_deadline_before),
        ):
            if at is not None:
                where.append(condition)
                params.append(v.to_db("ts", _aware(at, name)))
        if cursor is not None:
            opened_at, dispute_id = decode_cursor(cursor)
            where.append("(opened_at < %s OR (opened_at = %s AND dispute_id < %s))")
            params += [v.to_db("ts", opened_at), v.to_db("ts", opened_at), dispute_id]
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with v.transaction(commit=False) as curs:
            rows = v.select(
                curs,
                v.summary,
                f"{clause} ORDER BY opened_at DESC, dispute_id DESC LIMIT {limit + 1}",
                params,
            )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1]["opened_at"], rows[-1]["dispute_id"]) if more else None
        return DisputePage(rows, next_cursor)

    def get_summary(self, dispute_id: str) -> Row | None:
        v = self.summary
        with v.transaction(commit=False) as curs:
            rows = v.select(curs, v.summary, "WHERE dispute_id = %s", [str(dispute_id)])
        return rows[0] if rows else None

    # Figures -------------------------------------------------------------------------

    def seller_figures(self, seller_id: str | None = None) -> list[SellerFigures]:
        """Per seller (one seller, or every seller ordered by id, those with registered
        orders and no dispute included): the dispute rate and mix of reasons come from
        the orders view (disputes per registered order, seed 000)."""
        v = self.summary
        where, params = ("WHERE seller_id = %s", [seller_id]) if seller_id else ("", [])
        also = "AND seller_id = %s" if seller_id else ""
        table = v.table(SUMMARY_TABLE)
        refunded = ", ".join(f"'{o}'" for o in REFUNDED_OUTCOMES)
        with v.transaction(commit=False) as curs:
            totals = v.execute(
                curs,
                "SELECT seller_id, COUNT(*) AS disputes, "
                "SUM(CASE WHEN state = 'closed' THEN 1 ELSE 0 END) AS closed, "
                "SUM(CASE WHEN timeout_loss THEN 1 ELSE 0 END) AS timeout_losses, "
                f"SUM(CASE WHEN outcome IN ({refunded}) THEN 1 ELSE 0 END) AS refunded "
                f"FROM {table} {where} GROUP BY seller_id ORDER BY seller_id",
                params,
            )
            reasons = v.execute(
                curs,
                f"SELECT seller_id, reason, COUNT(*) AS n FROM {table} {where} "
                "GROUP BY seller_id, reason",
                params,
            )
            amounts = v.execute(
                curs,
                f"SELECT seller_id, currency, SUM(refunded_amount) AS amount FROM {table} "
                f"WHERE refunded_amount IS NOT NULL {also} "
                "GROUP BY seller_id, currency",
                params,
            )
            responses = v.execute(
                curs,
                f"SELECT seller_id, opened_at, seller_responded_at FROM {table} "
                f"WHERE seller_responded_at IS NOT NULL {also}",
                params,
            )
        by_reason: dict[str, dict[str, int]] = defaultdict(dict)
        for row in reasons:
            by_reason[row["seller_id"]][row["reason"]] = int(row["n"])
        refunded_amounts: dict[str, dict[str, int]] = defaultdict(dict)
        for row in amounts:
            refunded_amounts[row["seller_id"]][row["currency"]] = int(row["amount"])
        seconds: dict[str, list[float]] = defaultdict(list)
        for row in responses:
            opened = v.from_db("ts", row["opened_at"])
            answered = v.from_db("ts", row["seller_responded_at"])
            seconds[row["seller_id"]].append((answered - opened).total_seconds())
        registered = self._orders_by_seller(seller_id)
        known = {row["seller_id"] for row in totals}
        totals = sorted(
            [*totals, *({"seller_id": sid, "disputes": 0, "closed": 0, "timeout_losses": 0,
                         "refunded": 0} for sid in registered if sid not in known)],
            key=lambda row: row["seller_id"],
        )  # fmt: skip
        figures = []
        for row in totals:
            sid = row["seller_id"]
            orders, disputed, mix = registered.get(sid, (0, 0, {}))
            disputes, closed, refunds = (
                int(row["disputes"]),
                int(row["closed"]),
                int(row["refunded"]),
            )
            figures.append(
                SellerFigures(
                    seller_id=sid,
                    disputes=disputes,
                    open=disputes - closed,
                    closed=closed,
                    by_reason=dict(sorted(by_reason[sid].items())),
                    timeout_losses=int(row["timeout_losses"]),
                    refunded=refunds,
                    refund_rate=refunds / closed if closed else None,
                    amount_refunded=dict(sorted(refunded_amounts[sid].items())),
                    responded=len(seconds[sid]),
                    median_response_seconds=statistics.median(seconds[sid])
                    if seconds[sid]
                    else None,
                    orders=orders,
                    dispute_rate=disputed / orders if orders else None,
                    reason_mix=mix,
                )
            )
        return figures

    def _orders_by_seller(
        self, seller_id: str | None
    ) -> dict[str, tuple[int, int, dict[str, float]]]:
        """seller -> (orders registered, of them disputed, each reason's share of them)."""
        v = self.orders
        where, params = ("WHERE seller_id = %s", [seller_id]) if seller_id else ("", [])
        with v.transaction(commit=False) as curs:
            rows = v.execute(
                curs,
                f"SELECT seller_id, reason, COUNT(*) AS n, COUNT(dispute_id) AS disputed "
                f"FROM {v.table(ORDERS_TABLE)} {where} GROUP BY seller_id, reason",
                params,
            )
        orders: dict[str, int] = defaultdict(int)
        disputed: dict[str, int] = defaultdict(int)
        reasons: dict[str, dict[str, int]] = defaultdict(dict)
        for row in rows:
            sid = row["seller_id"]
            orders[sid] += int(row["n"])
            disputed[sid] += int(row["disputed"])
            if row["reason"] is not None:
                reasons[sid][row["reason"]] = int(row["n"])
        result = {}
        for sid, n in orders.items():
            total = sum(reasons[sid].values())
            mix = {r: k / total for r, k in sorted(reasons[sid].items())} if total else {}
            result[sid] = (n, disputed[sid], mix)
        return result

    def appeal_figures(self) -> AppealFigures:
        """Appeals filed, by whom, and how often they overturned the first ruling."""
        v = self.appeals
        with v.transaction(commit=False) as curs:
            [row] = v.execute(
                curs,
                "SELECT COUNT(*) AS rulings, COUNT(appealed_at) AS filed, "
                "SUM(CASE WHEN appeal_by = 'buyer' THEN 1 ELSE 0 END) AS by_buyer, "
                "SUM(CASE WHEN appeal_by = 'seller' THEN 1 ELSE 0 END) AS by_seller, "
                "COUNT(decided_at) AS decided, "
                "SUM(CASE WHEN overturned THEN 1 ELSE 0 END) AS overturned "
                f"FROM {v.table(APPEALS_TABLE)}",
            )
        rulings, filed, decided = int(row["rulings"]), int(row["filed"]), int(row["decided"])
        overturned = int(row["overturned"] or 0)
        return AppealFigures(
            rulings=rulings,
            filed=filed,
            by_buyer=int(row["by_buyer"] or 0),
            by_seller=int(row["by_seller"] or 0),
            pending=filed - decided,
            decided=decided,
            overturned=overturned,
            upheld=decided - overturned,
            overturn_rate=overturned / decided if decided else None,
            appeal_rate=filed / rulings if rulings else None,
        )

    def chargeback_figures(self, limit: int = 100) -> ChargebackFigures:
        """Chargebacks, the disputes they closed, and the double recoveries (a refund
        already paid) with the amount at risk: the newest `limit` listed."""
        v = self.orders
        table = v.table(CHARGEBACKS_TABLE)
        with v.transaction(commit=False) as curs:
            totals = v.execute(
                curs,
                "SELECT currency, COUNT(*) AS n, SUM(amount) AS amount, "
                "SUM(CASE WHEN dispute_id IS NULL THEN 1 ELSE 0 END) AS without_dispute, "
                "SUM(CASE WHEN double_recovery THEN 1 ELSE 0 END) AS doubles, "
                "SUM(CASE WHEN double_recovery THEN amount_at_risk ELSE 0 END) AS at_risk "
                f"FROM {table} GROUP BY currency ORDER BY currency",
            )
            doubles = v.select(
                curs,
                v.chargebacks,
                "WHERE double_recovery ORDER BY recorded_at DESC, order_key, reference "
                f"LIMIT {int(limit)}",
            )
        s = self.summary
        with s.transaction(commit=False) as curs:
            [closed] = s.execute(
                curs,
                f"SELECT COUNT(*) AS n FROM {s.table(SUMMARY_TABLE)} WHERE outcome = 'chargeback'",
            )
        return ChargebackFigures(
            chargebacks=sum(int(r["n"]) for r in totals),
            disputes_closed=int(closed["n"]),
            without_dispute=sum(int(r["without_dispute"] or 0) for r in totals),
            double_recoveries=sum(int(r["doubles"] or 0) for r in totals),
            amount={r["currency"]: int(r["amount"]) for r in totals},
            amount_at_risk={r["currency"]: int(r["at_risk"]) for r in totals if r["doubles"]},
            double_recovery_rows=doubles,
        )

    def counts_by_state(self) -> dict[str, int]:
        return self._count_by("state")

    def counts_by_outcome(self) -> dict[str, int]:
        return self._count_by("outcome", "WHERE outcome IS NOT NULL")

    def _count_by(self, column: str, where: str = "") -> dict[str, int]:
        v = self.summary
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
        v = self.daily
        first, last = _day(start, "start"), _day(end, "end")
        with v.transaction(commit=False) as curs:
            rows = v.select(
                curs, v.counts, "WHERE day >= %s AND day <= %s ORDER BY day", [first, last]
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
        return self._deadlines("d.due_at >= %s AND d.due_at < %s", [at, at + within])

    def sla_breaches(self, now: datetime) -> list[Row]:
        """Reviews and appeals whose ruling is past its SLA (7 business days from the
        escalation or the appeal) at `now`."""
        return self._deadlines(
            "d.kind IN ('ruling', 'appeal_ruling') AND d.due_at < %s", [_aware(now, "now")]
        )

    def payouts_overdue(self, now: datetime) -> list[Row]:
        """Refunds still pending after their expected payout date at `now`."""
        return self._deadlines(
            "d.kind = 'refund_payout' AND s.state = 'refund_pending' AND d.due_at < %s",
            [_aware(now, "now")],
        )

    def _deadlines(self, condition: str, times: list[datetime]) -> list[Row]:
        v = self.summary
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
        return event.timestamp.astimezone(UTC)  # type: ignore[attr-defined]


# Cursors -----------------------------------------------------------------------------


def encode_cursor(opened_at: datetime, dispute_id: str) -> str:
    raw = json.dumps([opened_at.astimezone(UTC).isoformat(), dispute_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_CURSOR_ID = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
CURSOR_MAX = 512


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The position a cursor names; anything but a cursor this API gave is refused (422),
    whatever it holds (deep nesting, NUL, a time out of range...)."""
    refused = InvalidInput("cursor", "opaque_cursor", "cursor is not one this API gave")
    if not isinstance(cursor, str) or len(cursor) > CURSOR_MAX:
        raise refused
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        if not raw.startswith(b'["'):  # the shape encode_cursor writes, before parsing
            raise ValueError(cursor)
        opened_at, dispute_id = json.loads(raw)
        at = datetime.fromisoformat(opened_at)
        if at.tzinfo is None or not isinstance(dispute_id, str):
            raise ValueError(cursor)
        if not _CURSOR_ID.fullmatch(dispute_id):
            raise ValueError(cursor)
        at = at.astimezone(UTC)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError, RecursionError):
        raise refused from None
    except OverflowError:
        raise refused from None
    return at, dispute_id


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
