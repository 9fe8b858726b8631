"""The dashboards' answers: `GET /v1/disputes` and the `/v1/stats/...` figures, served
from projections, each with its `lag`."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from .values import Money, Representation
from .vocabulary import Outcome, State


class Lag(Representation):
    """How far behind the event log the projection that answered is: the answer does
    not yet reflect this many of the newest events (0 once the projector caught up)."""

    events: int = Field(description="events written but not yet projected")
    seconds: float = Field(
        description="event time between the newest event and the last one projected"
    )


class NextDeadline(Representation):
    kind: str
    due_at: datetime


class DisputeSummary(Representation):
    """One row of `GET /v1/disputes` (from the dashboard projection, see `lag`)."""

    id: str
    order_id: str
    buyer_id: str
    seller_id: str
    reason: str
    state: State
    amount: Money = Field(description="the amount the buyer asks for")
    version: int
    opened_at: datetime
    next_deadline: NextDeadline | None
    outcome: Outcome | None
    closed_at: datetime | None
    refund: Money | None = Field(description="the refund decided, once known")


class DisputeList(Representation):
    data: list[DisputeSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")
    lag: Lag


class SellerStats(Representation):
    seller_id: str
    disputes: int
    open: int
    closed: int
    by_reason: dict[str, int]
    timeout_losses: int = Field(description="disputes lost by not answering in time")
    refunded: int = Field(description="closed with a refund")
    refund_rate: float | None = Field(description="refunded / closed; null while none closed")
    amount_refunded: list[Money]
    responded: int
    median_response_seconds: float | None = Field(
        description="opening to the seller's first answer"
    )
    orders: int = Field(default=0, description="orders registered for this seller")
    dispute_rate: float | None = Field(
        default=None, description="disputes per registered order; null without orders"
    )
    reason_mix: dict[str, float] = Field(
        default_factory=dict, description="each reason's share of the seller's disputes"
    )


class SellerStatsList(Representation):
    data: list[SellerStats]
    lag: Lag


class DeadlineEntry(Representation):
    dispute_id: str
    kind: str
    due_from: str
    due_at: datetime
    state: State
    reason: str
    buyer_id: str
    seller_id: str
    opened_at: datetime
    escalated_at: datetime | None
    amount: Money = Field(description="the order amount")
    refund: Money | None
    refund_failures: int


class DeadlineList(Representation):
    as_of: datetime = Field(description="the service clock's time the list was taken at")
    until: datetime | None = Field(default=None, description="deadlines-due: the window's end")
    data: list[DeadlineEntry]
    lag: Lag


class DailyCount(Representation):
    day: str = Field(description="UTC day, YYYY-MM-DD")
    opened: dict[str, int] = Field(description="disputes opened, by reason")
    entered: dict[str, int] = Field(description="disputes entering each state")
    closed: dict[str, int] = Field(description="disputes closed, by outcome")


class DailyCounts(Representation):
    from_: str = Field(alias="from")
    to: str
    data: list[DailyCount] = Field(description="days with anything only")
    lag: Lag


class DisputeCounts(Representation):
    total: int
    by_state: dict[str, int]
    by_outcome: dict[str, int]
    lag: Lag


class AppealFigures(Representation):
    rulings: int = Field(description="rulings made with an appeal window (state ruled)")
    filed: int = Field(description="appeals filed")
    by_buyer: int
    by_seller: int
    pending: int = Field(description="filed, not yet decided")
    decided: int
    overturned: int = Field(description="decided with a ruling unlike the first")
    upheld: int
    overturn_rate: float | None = Field(description="overturned / decided; null while none")
    appeal_rate: float | None = Field(description="filed / appealable rulings; null while none")
    lag: Lag


class DoubleRecovery(Representation):
    order_id: str
    reference: str
    dispute_id: str | None
    seller_id: str
    buyer_id: str
    amount: Money = Field(description="the chargeback")
    amount_at_risk: Money = Field(description="the part the paid refund already covered")
    opened_at: datetime
    recorded_at: datetime


class ChargebackFigures(Representation):
    chargebacks: int
    disputes_closed: int = Field(description="open disputes they closed (outcome chargeback)")
    without_dispute: int = Field(description="on orders with no dispute")
    double_recoveries: int
    amount: list[Money] = Field(description="charged back, per currency")
    amount_at_risk: list[Money] = Field(description="double recoveries' amount at risk")
    data: list[DoubleRecovery] = Field(description="the double recoveries, newest first")
    lag: Lag


Stats = (
    SellerStatsList | DeadlineList | DailyCounts | DisputeCounts | AppealFigures | ChargebackFigures
)
