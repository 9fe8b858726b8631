"""What the service answers about orders and disputes, the lifecycle as data, the sandbox
clock and health."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from .values import Money, Representation, Tracking
from .vocabulary import (
    Decision,
    HealthStatus,
    InfoRequestStatus,
    OfferType,
    Outcome,
    PartyName,
    RecommendedDecision,
    RequestedResolution,
    Settlement,
    State,
)


class ProtectionExtension(Representation):
    days: int
    reason: str
    by: str
    at: datetime


class Chargeback(Representation):
    reference: str
    amount: Money
    reason: str
    opened_at: datetime
    recorded_at: datetime
    dispute_id: str | None = Field(description="the order's dispute when it was reported")
    double_recovery: bool = Field(
        description="a refund was already paid for the order's dispute: paid twice"
    )
    amount_at_risk: Money | None = Field(
        description="double recovery: the part of the chargeback the refund already paid"
    )


class Order(Representation):
    id: str = Field(description="the marketplace's order id")
    buyer_id: str
    seller_id: str
    amount: Money
    payment_method: str
    placed_at: datetime
    shipped_at: datetime | None
    tracking: Tracking | None
    delivered_at: datetime | None
    protection_ends_at: datetime
    extensions: list[ProtectionExtension]
    dispute_id: str | None
    chargebacks: list[Chargeback] = Field(default_factory=list)
    version: int


class Deadline(Representation):
    kind: str
    due_from: str
    due_at: datetime


class Offer(Representation):
    type: OfferType
    amount: Money | None
    message: str
    made_at: datetime


class RefundFailure(Representation):
    reason: str
    at: datetime


class Refund(Representation):
    amount: Money
    started_at: datetime
    expected_by: datetime
    paid_at: datetime | None
    reference: str | None
    failures: list[RefundFailure]


class Evidence(Representation):
    kind: str
    uri: str
    sha256: str
    added_by: str
    at: datetime


class Message(Representation):
    from_role: str
    from_id: str
    body: str
    at: datetime


class InfoRequest(Representation):
    from_: str = Field(alias="from")
    question: str
    due_at: datetime
    requested_at: datetime
    status: InfoRequestStatus


class Return(Representation):
    address: str
    shipping_paid_by: str
    carrier: str | None
    tracking_number: str | None
    shipped_at: datetime | None
    delivered_at: datetime | None


class Ruling(Representation):
    decision: Decision
    amount: Money | None
    return_shipping_paid_by: str | None
    rationale: str
    by: str = Field(description="the agent who ruled")
    agent_id: str = Field(description="the same as `by` (kept for earlier clients)")
    at: datetime
    final_at: datetime | None = Field(
        description="when it takes (or took) effect: the appeal window's end while `ruled`; "
        "null while under appeal"
    )


class Appeal(Representation):
    by: PartyName = Field(description="the party who appealed")
    by_id: str
    reason: str
    at: datetime
    first_ruling: Ruling = Field(description="the ruling appealed")
    decided_at: datetime | None
    decided_by: str | None = Field(description="the agent who decided it (not the first one)")
    overturned: bool | None = Field(
        description="the appeal's ruling differs from the first (decision or amount)"
    )


class DisputeChargeback(Representation):
    reference: str
    amount: Money
    at: datetime


class Resolution(Representation):
    settlement: Settlement
    amount: Money | None
    via: str


class Recommendation(Representation):
    decision: RecommendedDecision
    amount: Money | None
    return_required: bool
    basis: str
    differs_from_ruling: bool | None = Field(
        default=None,
        description="once ruled (and for an appeal): whether the ruling on the record differs "
        "from this recommendation",
    )


class Dispute(Representation):
    id: str
    order_id: str = Field(description="the marketplace's order id")
    buyer_id: str
    seller_id: str
    state: State
    turn: PartyName | None = Field(description="whose answer the negotiation waits for")
    reason: str
    description: str
    requested_resolution: RequestedResolution
    amount: Money = Field(description="the refund the buyer requests")
    order_amount: Money
    payment_method: str
    version: int
    deadlines: list[Deadline]
    offer: Offer | None = Field(description="the seller's standing offer")
    resolution: Resolution | None
    outcome: Outcome | None
    refund: Refund | None
    return_: Return | None = Field(alias="return")
    ruling: Ruling | None
    appeal: Appeal | None = None
    chargeback: DisputeChargeback | None = Field(
        default=None, description="the chargeback that closed it (outcome chargeback)"
    )
    evidence: list[Evidence]
    messages: list[Message]
    info_requests: list[InfoRequest]
    escalated_at: datetime | None
    opened_at: datetime
    closed_at: datetime | None
    policy_version: str
    allowed_actions: list[str] = Field(description="the actions this caller may take now")
    recommendation: Recommendation | None = Field(
        default=None, description="the policy's clear-case view (agents and auditors only)"
    )


class Transition(Representation):
    trigger: str
    action: str | None = Field(description="the API action; null for a time-out")
    source: str
    dest: str
    conditions: list[str]
    roles: list[str]


class DeadlineKind(Representation):
    kind: str
    timeout: str | None


class StateMachine(Representation):
    states: list[str]
    initial: str
    terminal: list[str]
    actions: list[str]
    timeouts: list[str]
    reported_on_order: list[str] = Field(
        description="triggers reported on the order, not dispute actions (chargeback)"
    )
    deadlines: list[DeadlineKind]
    transitions: list[Transition]
    mermaid: str


class SandboxClock(Representation):
    now: datetime = Field(description="the service's clock after the move")
    offset_seconds: float = Field(description="how far the clock is ahead of real time")


class Health(Representation):
    status: HealthStatus
    quarantined_events: int | None = Field(
        default=None,
        description="stored events a reader (deadline worker, projector) could not apply "
        "and set aside; 0 is healthy (`python -m services.dispute.quarantine list`)",
    )
    reason: str | None = Field(
        default=None,
        description="why not ready (the dispute service's /readyz): e.g. how long the "
        "database has been unreachable, and its error",
    )
