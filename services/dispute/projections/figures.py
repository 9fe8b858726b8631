"""The figures the dashboards show: per seller, appeals, chargebacks (answers of
services.dispute.projections.queries)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from .fold import Row
from .read_models import (
    APPEALS_TABLE,
    CHARGEBACKS_TABLE,
    ORDERS_TABLE,
    SUMMARY_TABLE,
    AppealsView,
    OrdersView,
    SummaryView,
)

REFUNDED_OUTCOMES = ("refunded_full", "refunded_partial")


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


class FigureQueries:
    """The figures, from the summary, orders and appeals views (read-only)."""

    def __init__(self, summary: SummaryView, orders: OrdersView, appeals: AppealsView) -> None:
        self.summary = summary
        self.orders = orders
        self.appeals = appeals

    def seller_figures(self, seller_id: str | None = None) -> list[SellerFigures]:
        """Per seller (one seller, or every seller ordered by id, those with registered
        orders and no dispute included): the dispute rate and mix of reasons come from
        the orders view (disputes per registered order, seed 000)."""
        v = self.summary.recorder
        where, params = (f"WHERE seller_id = {v.p}", [seller_id]) if seller_id else ("", [])
        also = f"AND seller_id = {v.p}" if seller_id else ""
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
        v = self.orders.recorder
        where, params = (f"WHERE seller_id = {v.p}", [seller_id]) if seller_id else ("", [])
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
        v = self.appeals.recorder
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
        v = self.orders.recorder
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
                self.orders.chargebacks,
                "WHERE double_recovery ORDER BY recorded_at DESC, order_key, reference "
                f"LIMIT {int(limit)}",
            )
        s = self.summary.recorder
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
