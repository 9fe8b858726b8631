"""The public REST contract (/work/shared/spec/api.md) as pydantic v2 models.

Both the dispute service and the gateway import these: the request bodies (every one
refuses unknown fields, so nobody sets `state`, `outcome` or ids through a body), the
responses, and the RFC 9457 problem details. Keep names and shapes stable: clients
check them to the letter.

Requests check types, shapes and the limits at the door (below: character sets, lengths,
ranges, list sizes), so that nothing the service cannot store, show or compute with gets
in, and every limit shows in the OpenAPI document. The domain checks the rules
(currencies, which evidence a reason needs, amounts against the order...) and answers
with the field and the rule it broke.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
)
from pydantic_core import PydanticCustomError

PROBLEM_BASE = "https://disputes.internal/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

Role = Literal["buyer", "seller", "agent", "service", "auditor"]
PaymentMethod = Literal["card", "wallet", "other"]
EvidenceKind = Literal["photo", "video", "tracking", "document", "message"]
RequestedResolution = Literal["refund_only", "return_and_refund"]
OfferType = Literal["full_refund", "partial_refund", "return_and_refund", "replacement"]
Decision = Literal["full_refund", "partial_refund", "return_and_refund", "seller_favoured"]
PartyName = Literal["buyer", "seller"]
State = Literal[
    "awaiting_seller",
    "negotiating",
    "under_review",
    "ruled",
    "under_appeal",
    "awaiting_return",
    "return_in_transit",
    "refund_pending",
    "closed",
]
Outcome = Literal[
    "refunded_full",
    "refunded_partial",
    "replacement",
    "seller_favoured",
    "withdrawn",
    "buyer_lapsed",
    "return_not_shipped",
    "chargeback",
]
REASONS = (
    "not_received",
    "not_as_described",
    "wrong_item",
    "damaged",
    "missing_parts",
    "late_delivery",
    "not_shipped",
)

# Limits at the door -------------------------------------------------------------------
# Each with its reason; README "Limits" lists them too.

# Ids (order ids, buyer and seller ids, dispute ids in paths, filters): travel in URLs,
# headers (Location), logs and text columns, so a safe printable ASCII set: letters,
# digits and . _ : @ -, starting with a letter or digit (so never "." or ".."), 1 to 128
# characters (a UUID is 36; marketplace ids are shorter).
ID_MAX = 128
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$"
# Free text may hold line breaks and tabs, never another control character (PostgreSQL
# refuses NUL; the others corrupt logs and screens). One-line text holds none at all.
TEXT_PATTERN = r"^[^\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F]*$"
LINE_PATTERN = r"^[^\x00-\x1F\x7F-\x9F]*$"
LONG_TEXT_MAX = 4000  # descriptions, messages, rationales: a long letter, not a file
REASON_TEXT_MAX = 1000  # why a party rejects, escalates, withdraws...
LINE_MAX = 200  # carriers, tracking numbers, payment references
# Money: at most 10^11 minor units (a billion dollars), far above any order and far
# below 2^53 (the largest integer a JSON client in JavaScript reads exactly) and
# PostgreSQL's bigint, even summed over every dispute in the stats.
MAX_AMOUNT = 100_000_000_000
# Times: 2000-01-01 to 2100-01-01 (UTC). Every deadline and protection end is such a
# time plus at most a few hundred days, so no date arithmetic can leave year 9999.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
TIME_RANGE = "2000-01-01T00:00:00Z to 2100-01-01T00:00:00Z"
MAX_EVIDENCE = 20  # evidence items per request
# A sandbox clock move: days, hours, minutes, seconds in ISO 8601 (P5D, PT12H, P1DT2H);
# the service also keeps the clock before LATEST.
SANDBOX_ADVANCE_MAX_DAYS = 9999
_CLOCK = (
    "T(?:[0-9]{1,6}H(?:[0-9]{1,8}M)?(?:[0-9]{1,10}S)?|[0-9]{1,8}M(?:[0-9]{1,10}S)?|[0-9]{1,10}S)"
)
SANDBOX_ADVANCE_PATTERN = rf"^P(?:[0-9]{{1,4}}D(?:{_CLOCK})?|{_CLOCK})$"
EVIDENCE_URI_MAX = 2048
EXTENSION_DAYS_MAX = 365
CURSOR_MAX = 512
VERSION_MAX = 1_000_000  # events of one dispute; far beyond any real history
POSITION_MAX = 2**63 - 1  # the event log's position is a bigint


def _day_in_range(value: date) -> date:
    if not EARLIEST.date() <= value <= LATEST.date():
        raise PydanticCustomError("time_range", "must lie in {range}", {"range": TIME_RANGE})
    return value


def _in_range(value: datetime) -> datetime:
    if not EARLIEST <= value <= LATEST:
        raise PydanticCustomError("time_range", "must lie in {range}", {"range": TIME_RANGE})
    return value


Id = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=ID_MAX,
        pattern=ID_PATTERN,
        description="1 to 128 of A-Z a-z 0-9 . _ : @ -, starting with a letter or digit",
    ),
]
Text = Annotated[
    StrictStr,
    Field(min_length=1, max_length=LONG_TEXT_MAX, pattern=TEXT_PATTERN),
]
ReasonText = Annotated[
    StrictStr,
    Field(min_length=1, max_length=REASON_TEXT_MAX, pattern=TEXT_PATTERN),
]
Line = Annotated[
    StrictStr,
    Field(min_length=1, max_length=LINE_MAX, pattern=LINE_PATTERN),
]
ReasonName = Literal[
    "not_received", "not_as_described", "wrong_item", "damaged", "missing_parts", "late_delivery",
    "not_shipped",
]  # fmt: skip
Cursor = Annotated[
    StrictStr, Field(min_length=1, max_length=CURSOR_MAX, pattern=r"^[A-Za-z0-9_-]+$")
]
Day = Annotated[
    date,
    AfterValidator(_day_in_range),
    Field(description="a UTC day, YYYY-MM-DD, 2000-01-01 to 2100-01-01"),
]
Time = Annotated[
    AwareDatetime,
    AfterValidator(_in_range),
    Field(description=f"RFC 3339 with a zone, {TIME_RANGE}"),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# Shared values -------------------------------------------------------------------------


class Money(BaseModel):
    """An integer of minor units and an ISO 4217 code: `{"amount": 1999, "currency": "USD"}`."""

    model_config = ConfigDict(extra="forbid")

    amount: StrictInt = Field(description="minor units (cents for USD)", examples=[1999])
    currency: StrictStr = Field(
        pattern=r"^[A-Z]{3}$", description="ISO 4217 code", examples=["USD"]
    )


class MoneyIn(Money):
    """Money in a request: 0 to 10^11 minor units (MAX_AMOUNT) and an ISO 4217 code."""

    amount: StrictInt = Field(
        ge=0,
        le=MAX_AMOUNT,
        description=f"minor units (cents for USD), 0 to {MAX_AMOUNT}",
        examples=[1999],
    )


class EvidenceItem(BaseModel):
    """A reference to evidence held elsewhere; the service stores the reference, not bytes."""

    model_config = ConfigDict(extra="forbid")

    kind: EvidenceKind
    uri: StrictStr = Field(
        max_length=EVIDENCE_URI_MAX,
        pattern=r"^https?://[^\x00-\x20\x7F-\x9F/?#]+[^\x00-\x20\x7F-\x9F]*$",
        description="an https URL of the file (http only when the service runs in "
        "development), at most 2048 characters, no spaces or control characters",
        examples=["https://files.example/abc.jpg"],
    )
    sha256: StrictStr = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="64 lower-case hex digits of the content's SHA-256",
    )


class Tracking(BaseModel):
    model_config = ConfigDict(extra="forbid")

    carrier: Line
    number: Line


class Actor(_Response):
    role: str
    id: str


# Requests: orders ----------------------------------------------------------------------


class OrderPut(_Request):
    """`PUT /v1/orders/{order_id}` (service): register an order or add shipping facts."""

    buyer_id: Id
    seller_id: Id
    amount: MoneyIn
    payment_method: PaymentMethod
    placed_at: Time
    shipped_at: Time | None = None
    tracking: Tracking | None = None
    delivered_at: Time | None = None


class ChargebackCreate(_Request):
    """`POST /v1/orders/{order_id}/chargebacks` (service): the payments service reports a
    chargeback. An open dispute on the order closes with outcome `chargeback`; after a
    paid refund it is flagged `double_recovery`; the order can no longer be disputed."""

    reference: Line = Field(
        description="the card network's or the payment provider's case reference, at most "
        "200 characters on one line; recorded once per order"
    )
    amount: MoneyIn = Field(description="in the order's currency, 1 up to the order amount")
    reason: ReasonText
    opened_at: Time = Field(description="when the cardholder opened it; not in the future")


class ProtectionExtensionCreate(_Request):
    """`POST /v1/orders/{order_id}/protection-extensions` (seller)."""

    days: StrictInt = Field(ge=1, le=EXTENSION_DAYS_MAX)
    reason: ReasonText


# Requests: disputes --------------------------------------------------------------------


class DisputeCreate(_Request):
    """`POST /v1/disputes` (buyer)."""

    order_id: Id
    reason: StrictStr = Field(
        max_length=64, pattern=r"^[a-z_]{1,64}$", description="one of: " + ", ".join(REASONS)
    )
    requested_resolution: RequestedResolution
    amount: MoneyIn
    description: Text
    evidence: list[EvidenceItem] = Field(default_factory=list, max_length=MAX_EVIDENCE)


class AcceptBody(_Request):
    """`accept` (seller): accepts the buyer's standing request. No fields."""


class RejectBody(_Request):
    reason: ReasonText
    evidence: list[EvidenceItem] = Field(default_factory=list, max_length=MAX_EVIDENCE)


class OfferBody(_Request):
    type: OfferType
    amount: MoneyIn | None = Field(default=None, description="where the offer type takes one")
    message: Annotated[StrictStr, Field(max_length=LONG_TEXT_MAX, pattern=TEXT_PATTERN)] | None = (
        None
    )


class AcceptOfferBody(_Request):
    """`accept-offer` (buyer): accepts the seller's standing offer. No fields."""


class ReviseBody(_Request):
    requested_resolution: RequestedResolution
    amount: MoneyIn
    message: Annotated[StrictStr, Field(max_length=LONG_TEXT_MAX, pattern=TEXT_PATTERN)] | None = (
        None
    )


class EscalateBody(_Request):
    reason: ReasonText


class WithdrawBody(_Request):
    reason: ReasonText


class EvidenceBody(_Request):
    evidence: list[EvidenceItem] = Field(min_length=1, max_length=MAX_EVIDENCE)


class MessageBody(_Request):
    body: Text


class RequestInfoBody(_Request):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: PartyName = Field(alias="from")
    question: Text
    due_at: Time | None = None


class RuleBody(_Request):
    decision: Decision
    amount: MoneyIn | None = Field(default=None, description="where the decision takes one")
    return_shipping_paid_by: PartyName | None = None
    rationale: Text


class AppealBody(_Request):
    """`appeal` (the party the ruling went against, while `ruled`): once, with new evidence;
    an agent other than the one who ruled decides it."""

    reason: ReasonText
    evidence: list[EvidenceItem] = Field(min_length=1, max_length=MAX_EVIDENCE)


class ShipReturnBody(_Request):
    carrier: Line
    tracking_number: Line


class ReturnDeliveredBody(_Request):
    delivered_at: Time


class ConfirmReturnBody(_Request):
    """`confirm-return` (seller). No fields."""


class ContestReturnBody(_Request):
    reason: ReasonText
    evidence: list[EvidenceItem] = Field(default_factory=list, max_length=MAX_EVIDENCE)


class RefundPaidBody(_Request):
    reference: Line
    paid_at: Time


class RefundFailedBody(_Request):
    reason: ReasonText


class ExtendDeadlineBody(_Request):
    deadline: StrictStr = Field(
        pattern=r"^[a-z_]{1,64}$",
        description="the kind of a pending deadline, e.g. seller_response",
    )
    until: Time
    reason: ReasonText


# Every action of the table and its body; actions whose body has no fields take none.
ACTION_BODIES: dict[str, type[BaseModel]] = {
    "accept": AcceptBody,
    "reject": RejectBody,
    "offer": OfferBody,
    "accept-offer": AcceptOfferBody,
    "revise": ReviseBody,
    "escalate": EscalateBody,
    "withdraw": WithdrawBody,
    "evidence": EvidenceBody,
    "messages": MessageBody,
    "request-info": RequestInfoBody,
    "rule": RuleBody,
    "appeal": AppealBody,
    "ship-return": ShipReturnBody,
    "return-delivered": ReturnDeliveredBody,
    "confirm-return": ConfirmReturnBody,
    "contest-return": ContestReturnBody,
    "refund-paid": RefundPaidBody,
    "refund-failed": RefundFailedBody,
    "extend-deadline": ExtendDeadlineBody,
}


class SandboxClockAdvance(_Request):
    """`POST /v1/sandbox/clock` (only with DISPUTES_SANDBOX=1)."""

    advance: StrictStr = Field(
        max_length=32,
        pattern=SANDBOX_ADVANCE_PATTERN,
        description="an ISO 8601 duration in days, hours, minutes and seconds, at most "
        f"{SANDBOX_ADVANCE_MAX_DAYS} days; the clock stays before {LATEST.date()}",
        examples=["P5D", "PT12H"],
    )


# Responses -----------------------------------------------------------------------------


class ProtectionExtension(_Response):
    days: int
    reason: str
    by: str
    at: datetime


class Chargeback(_Response):
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


class Order(_Response):
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


class Deadline(_Response):
    kind: str
    due_from: str
    due_at: datetime


class Offer(_Response):
    type: OfferType
    amount: Money | None
    message: str
    made_at: datetime


class RefundFailure(_Response):
    reason: str
    at: datetime


class Refund(_Response):
    amount: Money
    started_at: datetime
    expected_by: datetime
    paid_at: datetime | None
    reference: str | None
    failures: list[RefundFailure]


class Evidence(_Response):
    kind: str
    uri: str
    sha256: str
    added_by: str
    at: datetime


class Message(_Response):
    from_role: str
    from_id: str
    body: str
    at: datetime


class InfoRequest(_Response):
    from_: str = Field(alias="from")
    question: str
    due_at: datetime
    requested_at: datetime
    status: Literal["open", "answered", "superseded", "lapsed", "closed"]


class Return(_Response):
    address: str
    shipping_paid_by: str
    carrier: str | None
    tracking_number: str | None
    shipped_at: datetime | None
    delivered_at: datetime | None


class Ruling(_Response):
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


class Appeal(_Response):
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


class DisputeChargeback(_Response):
    reference: str
    amount: Money
    at: datetime


class Resolution(_Response):
    settlement: Literal["refund", "return", "replacement", "nothing"]
    amount: Money | None
    via: str


class Recommendation(_Response):
    decision: Literal["full_refund", "partial_refund", "return_and_refund", "none"]
    amount: Money | None
    return_required: bool
    basis: str
    differs_from_ruling: bool | None = Field(
        default=None,
        description="once ruled (and for an appeal): whether the ruling on the record differs "
        "from this recommendation",
    )


class Dispute(_Response):
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


class Event(_Response):
    """One event of a dispute's history."""

    id: str = Field(
        description="unique and stable; the `webhook-id` and `Nats-Msg-Id` of its deliveries"
    )
    version: int
    type: str
    at: datetime
    actor: Actor
    request_id: str | None
    traceparent: str | None = Field(
        default=None, description="the W3C trace context of the request that caused it"
    )
    payload: dict[str, Any]


class DisputeHistory(_Response):
    dispute_id: str
    events: list[Event]


class FeedEvent(Event):
    """One event of the global log, in commit order."""

    position: int = Field(description="resume with ?after=<position>")
    stream: Literal["dispute", "order"]
    stream_id: str = Field(description="the dispute's id, or the order's marketplace id")


class EventFeed(_Response):
    events: list[FeedEvent]
    next_after: int | None = Field(
        description="pass as ?after= to read on; the given `after` when nothing is new"
    )


class Transition(_Response):
    trigger: str
    action: str | None = Field(description="the API action; null for a time-out")
    source: str
    dest: str
    conditions: list[str]
    roles: list[str]


class DeadlineKind(_Response):
    kind: str
    timeout: str | None


class StateMachine(_Response):
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


class SandboxClock(_Response):
    now: datetime = Field(description="the service's clock after the move")
    offset_seconds: float = Field(description="how far the clock is ahead of real time")


class Health(_Response):
    status: Literal["ok", "unavailable"]
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


# Problems (RFC 9457) -------------------------------------------------------------------


class FieldError(_Response):
    field: str = Field(description="dotted path of the bad field, e.g. amount.currency")
    rule: str = Field(description="the rule it breaks, e.g. required, one_of, minimum")
    message: str


class Problem(_Response):
    """RFC 9457 problem details, served as application/problem+json."""

    type: str = Field(examples=[PROBLEM_BASE + "action_not_allowed"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="422: every bad field and the rule it breaks"
    )
    allowed_actions: list[str] | None = Field(
        default=None, description="409 action_not_allowed: the actions allowed now"
    )


def problem_type(code: str) -> str:
    return PROBLEM_BASE + code


# Dashboards: GET /v1/disputes and /v1/stats/... (served from projections) --------------


class Lag(_Response):
    """How far behind the event log the projection that answered is: the answer does
    not yet reflect this many of the newest events (0 once the projector caught up)."""

    events: int = Field(description="events written but not yet projected")
    seconds: float = Field(
        description="event time between the newest event and the last one projected"
    )


class NextDeadline(_Response):
    kind: str
    due_at: datetime


class DisputeSummary(_Response):
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


class DisputeList(_Response):
    data: list[DisputeSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: last")
    lag: Lag


class SellerStats(_Response):
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


class SellerStatsList(_Response):
    data: list[SellerStats]
    lag: Lag


class DeadlineEntry(_Response):
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


class DeadlineList(_Response):
    as_of: datetime = Field(description="the service clock's time the list was taken at")
    until: datetime | None = Field(default=None, description="deadlines-due: the window's end")
    data: list[DeadlineEntry]
    lag: Lag


class DailyCount(_Response):
    day: str = Field(description="UTC day, YYYY-MM-DD")
    opened: dict[str, int] = Field(description="disputes opened, by reason")
    entered: dict[str, int] = Field(description="disputes entering each state")
    closed: dict[str, int] = Field(description="disputes closed, by outcome")


class DailyCounts(_Response):
    from_: str = Field(alias="from")
    to: str
    data: list[DailyCount] = Field(description="days with anything only")
    lag: Lag


class DisputeCounts(_Response):
    total: int
    by_state: dict[str, int]
    by_outcome: dict[str, int]
    lag: Lag


class AppealFigures(_Response):
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


class DoubleRecovery(_Response):
    order_id: str
    reference: str
    dispute_id: str | None
    seller_id: str
    buyer_id: str
    amount: Money = Field(description="the chargeback")
    amount_at_risk: Money = Field(description="the part the paid refund already covered")
    opened_at: datetime
    recorded_at: datetime


class ChargebackFigures(_Response):
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


class VerificationFinding(_Response):
    """One thing wrong with a stored history, named."""

    kind: str = Field(
        description="chain_broken, event_changed, events_swapped, event_deleted, "
        "history_truncated, case_deleted, event_not_in_tree, not_in_checkpoint, "
        "tree_rolled_back, tree_rewritten, tree_damaged, checkpoint_invalid"
    )
    version: int | None = Field(description="the version concerned, if one is")
    detail: str


class Verification(_Response):
    """GET /v1/disputes/{id}/verification: the dispute's hash chain recomputed, and its
    history compared with the Merkle log and the newest signed checkpoint."""

    dispute_id: str
    intact: bool = Field(
        description="every stored event verifies against the hash chain and the Merkle "
        "log, and the log against its newest signed checkpoint"
    )
    events: int = Field(description="stored events checked")
    head: str | None = Field(description="the recorded chain head (hex sha256)")
    first_invalid_version: int | None = Field(
        description="the first version that does not verify (changed, missing, reordered)"
    )
    findings: list[VerificationFinding] = Field(
        default_factory=list, description="each problem found, named; empty when intact"
    )
    checkpoint_size: int | None = Field(
        default=None, description="the tree size of the signed checkpoint checked against"
    )
    proved_events: int = Field(default=0, description="events proved included in that checkpoint")
    pending_events: int = Field(
        default=0, description="newer events not yet in the Merkle log (it lags the writes)"
    )
    checked_at: datetime


# Webhooks (service) --------------------------------------------------------------------

# A URL fits the usual 2 KiB of servers and proxies; a subscription names at most 50
# event types (there are fewer than 40) or "*"; a description is a note, not a document.
WEBHOOK_URL_MAX = 2048
WEBHOOK_EVENTS_MAX = 50
WEBHOOK_DESCRIPTION_MAX = 500
WEBHOOK_EVENT_TYPE_MAX = 64


class WebhookCreate(_Request):
    """POST /v1/webhooks: subscribe an endpoint to events."""

    url: StrictStr = Field(
        min_length=1,
        max_length=WEBHOOK_URL_MAX,
        pattern=r"^[\x21-\x7e]+$",
        description="an https:// URL on a public address (plain http://, private and "
        "loopback addresses only with DISPUTES_WEBHOOKS_ALLOW_PRIVATE=1); redirects are "
        "not followed",
        examples=["https://payments.example/hooks/disputes"],
    )
    events: list[
        Annotated[
            StrictStr,
            Field(min_length=1, max_length=WEBHOOK_EVENT_TYPE_MAX, pattern=r"^(\*|[A-Za-z]+)$"),
        ]
    ] = Field(
        min_length=1,
        max_length=WEBHOOK_EVENTS_MAX,
        description='event types (the `type` of /v1/events), or ["*"] for all',
        examples=[["RefundStarted", "ReturnShipped"], ["*"]],
    )
    description: StrictStr | None = Field(
        default=None, max_length=WEBHOOK_DESCRIPTION_MAX, pattern=TEXT_PATTERN
    )


class WebhookReplay(_Request):
    """POST /v1/webhooks/{id}/replay: deliver again everything after a position."""

    after: StrictInt = Field(
        ge=0,
        le=POSITION_MAX,
        description="a feed position; every wanted event after it is delivered again",
    )


class Webhook(_Response):
    id: str
    url: str
    events: list[str]
    description: str | None
    created_at: datetime
    position: int = Field(description="the last feed position delivered (or not wanted)")
    status: Literal["active", "retrying"] = Field(
        description="`retrying`: the next event failed and waits for its retry"
    )
    failing_since: datetime | None
    next_attempt_at: datetime | None = Field(description="when retrying: the next attempt")


class WebhookCreated(Webhook):
    secret: str = Field(
        description="the signing secret (`whsec_` + base64): shown only in this answer"
    )


class WebhookList(_Response):
    webhooks: list[Webhook]


class WebhookDelivery(_Response):
    """One delivery attempt."""

    id: int
    event_id: str = Field(description="the event's id, the attempt's `webhook-id`")
    event_type: str
    position: int
    attempt: int = Field(description="1 for the first attempt at this event")
    status: Literal["delivered", "failed"]
    response_code: int | None = Field(description="the endpoint's answer, if any")
    error: str | None
    at: datetime = Field(description="when the attempt started")
    duration_ms: int
    next_retry_at: datetime | None = Field(description="failed: when it is tried again")


class WebhookDeliveries(_Response):
    deliveries: list[WebhookDelivery] = Field(description="newest first")
    next_before: int | None = Field(description="pass as ?before= for older ones")


# The Merkle log: GET /v1/audit/... (auditor, agent) ----------------------------------


class Checkpoint(_Response):
    """A signed checkpoint of the Merkle log: a C2SP tlog-checkpoint in a signed note."""

    origin: str = Field(description="the log's name, also the signing key's name")
    tree_size: int = Field(description="events in the log")
    root_hash: str = Field(description="RFC 9162 root hash (hex)")
    time: datetime
    note: str = Field(description="the signed note itself, to keep and verify offline")
    key_hash: str = Field(description="the signing key's 4-byte hash (hex), as in the note")


class InclusionProof(_Response):
    """An RFC 9162 inclusion proof of one event in the tree of `tree_size` events."""

    aggregate_id: str
    version: int
    leaf_index: int
    tree_size: int
    event_hash: str = Field(description="SHA-256 of the event's canonical form (hex)")
    leaf_hash: str = Field(description="RFC 9162 leaf hash of (aggregate, version, event hash)")
    root_hash: str = Field(description="the root the proof leads to (hex)")
    proof: list[str] = Field(description="the audit path, nearest the leaf first (hex)")


class ConsistencyProof(_Response):
    """An RFC 9162 consistency proof: the tree of `second` events extends that of `first`."""

    first: int
    second: int
    first_root: str
    second_root: str
    proof: list[str] = Field(description="the consistency path (hex)")
