"""The request bodies: orders, opening a dispute, every action's body, the sandbox clock.

`ACTION_BODIES` names every action of the API and its body: the service's action routes
and the gateway's are made from it.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from .limits import (
    EXTENSION_DAYS_MAX,
    LATEST,
    LONG_TEXT_MAX,
    MAX_EVIDENCE,
    SANDBOX_ADVANCE_MAX_DAYS,
    SANDBOX_ADVANCE_PATTERN,
    TEXT_PATTERN,
    Id,
    Line,
    ReasonText,
    Text,
    Time,
)
from .values import EvidenceItem, MoneyIn, RequestBody, Tracking
from .vocabulary import (
    REASONS,
    Decision,
    OfferType,
    PartyName,
    PaymentMethod,
    RequestedResolution,
)

# Requests: orders ----------------------------------------------------------------------


class OrderPut(RequestBody):
    """`PUT /v1/orders/{order_id}` (service): register an order or add shipping facts."""

    buyer_id: Id
    seller_id: Id
    amount: MoneyIn
    payment_method: PaymentMethod
    placed_at: Time
    shipped_at: Time | None = None
    tracking: Tracking | None = None
    delivered_at: Time | None = None


class ChargebackCreate(RequestBody):
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


class ProtectionExtensionCreate(RequestBody):
    """`POST /v1/orders/{order_id}/protection-extensions` (seller)."""

    days: StrictInt = Field(ge=1, le=EXTENSION_DAYS_MAX)
    reason: ReasonText


# Requests: disputes --------------------------------------------------------------------


class DisputeCreate(RequestBody):
    """`POST /v1/disputes` (buyer)."""

    order_id: Id
    reason: StrictStr = Field(
        max_length=64, pattern=r"^[a-z_]{1,64}$", description="one of: " + ", ".join(REASONS)
    )
    requested_resolution: RequestedResolution
    amount: MoneyIn
    description: Text
    evidence: list[EvidenceItem] = Field(default_factory=list, max_length=MAX_EVIDENCE)


class AcceptBody(RequestBody):
    """`accept` (seller): accepts the buyer's standing request. No fields."""


class RejectBody(RequestBody):
    reason: ReasonText
    evidence: list[EvidenceItem] = Field(default_factory=list, max_length=MAX_EVIDENCE)


class OfferBody(RequestBody):
    type: OfferType
    amount: MoneyIn | None = Field(default=None, description="where the offer type takes one")
    message: Annotated[StrictStr, Field(max_length=LONG_TEXT_MAX, pattern=TEXT_PATTERN)] | None = (
        None
    )


class AcceptOfferBody(RequestBody):
    """`accept-offer` (buyer): accepts the seller's standing offer. No fields."""


class ReviseBody(RequestBody):
    requested_resolution: RequestedResolution
    amount: MoneyIn
    message: Annotated[StrictStr, Field(max_length=LONG_TEXT_MAX, pattern=TEXT_PATTERN)] | None = (
        None
    )


class EscalateBody(RequestBody):
    reason: ReasonText


class WithdrawBody(RequestBody):
    reason: ReasonText


class EvidenceBody(RequestBody):
    evidence: list[EvidenceItem] = Field(min_length=1, max_length=MAX_EVIDENCE)


class MessageBody(RequestBody):
    body: Text


class RequestInfoBody(RequestBody):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: PartyName = Field(alias="from")
    question: Text
    due_at: Time | None = None


class RuleBody(RequestBody):
    decision: Decision
    amount: MoneyIn | None = Field(default=None, description="where the decision takes one")
    return_shipping_paid_by: PartyName | None = None
    rationale: Text


class AppealBody(RequestBody):
    """`appeal` (the party the ruling went against, while `ruled`): once, with new evidence;
    an agent other than the one who ruled decides it."""

    reason: ReasonText
    evidence: list[EvidenceItem] = Field(min_length=1, max_length=MAX_EVIDENCE)


class ShipReturnBody(RequestBody):
    carrier: Line
    tracking_number: Line


class ReturnDeliveredBody(RequestBody):
    delivered_at: Time


class ConfirmReturnBody(RequestBody):
    """`confirm-return` (seller). No fields."""


class ContestReturnBody(RequestBody):
    reason: ReasonText
    evidence: list[EvidenceItem] = Field(default_factory=list, max_length=MAX_EVIDENCE)


class RefundPaidBody(RequestBody):
    reference: Line
    paid_at: Time


class RefundFailedBody(RequestBody):
    reason: ReasonText


class ExtendDeadlineBody(RequestBody):
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


class SandboxClockAdvance(RequestBody):
    """`POST /v1/sandbox/clock` (only with DISPUTES_SANDBOX=1)."""

    advance: StrictStr = Field(
        max_length=32,
        pattern=SANDBOX_ADVANCE_PATTERN,
        description="an ISO 8601 duration in days, hours, minutes and seconds, at most "
        f"{SANDBOX_ADVANCE_MAX_DAYS} days; the clock stays before {LATEST.date()}",
        examples=["P5D", "PT12H"],
    )
