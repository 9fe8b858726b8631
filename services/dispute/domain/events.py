"""The Dispute aggregate's events, and what each one changes.

Each event carries the state and the deadlines it leads to, computed when the command
recorded it, so `apply` only copies values: no clock, no policy, no validation, no side
effects. Events carry plain mappings (`state.*Data`): the payload the event feed and
webhooks publish, as every stored history holds it; `apply` turns them into the
aggregate's value objects (`state.py`).

The aggregate (`dispute.Dispute`) names each of these classes in its body, where
eventsourcing redefines it as `Dispute.<Name>`: that nested class is what is stored, under
the topic `services.dispute.domain.dispute:Dispute.<Name>` that histories already hold.
Over 400 lines: one class per event of the lifecycle, each with the state it changes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from eventsourcing.domain import Aggregate

from . import rules
from .policy import Policy
from .state import (
    Appeal,
    Deadline,
    DeadlineData,
    EvidenceData,
    InfoRequestRecord,
    Offer,
    Refund,
    RefundData,
    Resolution,
    ResolutionData,
    Return,
    ReturnData,
    Ruling,
)
from .values import Role

if TYPE_CHECKING:
    from .dispute import Dispute


class Event(Aggregate.Event):
    """Every event: who caused it, for which request, and the state it leads to."""

    actor_role: str
    actor_id: str
    correlation_id: str
    # Events stored before traces were recorded have none: read it with getattr.
    traceparent: str | None
    state: str
    deadlines: list[DeadlineData]

    def apply(self, dispute: Dispute) -> None:
        dispute.state = self.state
        dispute.deadlines = [Deadline.from_dict(d) for d in self.deadlines]
        if self.state == rules.CLOSED:
            dispute.closed_at = self.timestamp
            dispute.turn = None
        self.change(dispute)

    def change(self, dispute: Dispute) -> None:
        """What this event changes besides state and deadlines."""


class Opened(Event, Aggregate.Created):
    order_ref: str
    buyer_id: str
    seller_id: str
    currency: str
    order_amount: int
    payment_method: str
    reason: str
    requested_resolution: str
    amount: int
    description: str
    evidence: list[EvidenceData]
    policy: dict[str, Any]

    def change(self, dispute: Dispute) -> None:
        dispute.order_ref = self.order_ref
        dispute.buyer_id = self.buyer_id
        dispute.seller_id = self.seller_id
        dispute.currency = self.currency
        dispute.order_amount = self.order_amount
        dispute.payment_method = self.payment_method
        dispute.reason = self.reason
        dispute.description = self.description
        dispute.policy = Policy.recorded(self.policy)
        dispute.opened_at = self.timestamp
        dispute.requested_resolution = self.requested_resolution
        dispute.requested_amount = self.amount
        dispute.turn = None
        dispute.standing_offer = None
        dispute.evidence = [
            {**item, "added_by": Role.BUYER.value, "at": self.timestamp} for item in self.evidence
        ]
        dispute.messages = []
        dispute.info_requests = []
        dispute.seller_responded_at = None
        dispute.contested = False
        dispute.escalated_at = None
        dispute.ruling = None
        dispute.resolution = None
        dispute.return_shipment = None
        dispute.refund = None
        dispute.outcome = None
        dispute.closed_at = None
        dispute.appeal = None
        dispute.chargeback = None


class Settled(Event):
    """A resolution was reached: agreed, ruled, or granted by the seller's silence."""

    resolution: ResolutionData
    refund: RefundData | None
    return_shipment: ReturnData | None
    outcome: str | None

    def change(self, dispute: Dispute) -> None:
        if dispute.seller_responded_at is None and self.actor_role == Role.SELLER:
            dispute.seller_responded_at = self.timestamp
        dispute.resolution = Resolution.from_dict(self.resolution)
        dispute.refund = Refund.from_dict(self.refund) if self.refund else None
        dispute.return_shipment = (
            Return.from_dict(self.return_shipment) if self.return_shipment else None
        )
        dispute.outcome = self.outcome
        dispute.standing_offer = None
        dispute.turn = None
        self.settled(dispute)

    def settled(self, dispute: Dispute) -> None:
        pass


class SellerAccepted(Settled):
    pass


class OfferAccepted(Settled):
    pass


class SellerResponseLapsed(Settled):
    pass


class Ruled(Settled):
    """A ruling that takes effect at once: appeals off (or a history recorded before
    appeals existed)."""

    decision: str
    amount: int | None
    return_shipping_paid_by: str | None
    rationale: str

    def settled(self, dispute: Dispute) -> None:
        _put_ruling(dispute, self, final_at=self.timestamp)


class AppealRuled(Ruled):
    """Another agent decided the appeal: final, and takes effect at once."""

    def settled(self, dispute: Dispute) -> None:
        super().settled(dispute)
        if dispute.appeal is None:  # not in any history: an appeal precedes its ruling
            return
        first = dispute.appeal.first_ruling
        terms = (None, None) if first is None else (first.decision, first.amount)
        dispute.appeal = replace(
            dispute.appeal,
            decided_at=self.timestamp,
            decided_by=self.actor_id,
            overturned=terms != (self.decision, self.amount),
        )


class RulingTookEffect(Settled):
    """The appeal window ended without an appeal: the ruling takes effect."""

    def settled(self, dispute: Dispute) -> None:
        assert dispute.ruling is not None
        dispute.ruling = dispute.ruling.final(self.timestamp)


class RulingIssued(Event):
    """The agent ruled; the ruling is on the record and final after the appeal window."""

    decision: str
    amount: int | None
    return_shipping_paid_by: str | None
    rationale: str
    final_at: datetime

    def change(self, dispute: Dispute) -> None:
        dispute.turn = None
        dispute.standing_offer = None
        _put_ruling(dispute, self, final_at=self.final_at)


class Appealed(Event):
    """The party the ruling went against appealed it, with a reason and new evidence."""

    reason: str
    evidence: list[EvidenceData]

    def change(self, dispute: Dispute) -> None:
        dispute.appeal = Appeal(
            by=self.actor_role,
            by_id=self.actor_id,
            reason=self.reason,
            at=self.timestamp,
            first_ruling=dispute.ruling,
            decided_at=None,
            decided_by=None,
            overturned=None,
        )
        if dispute.ruling is not None:
            dispute.ruling = dispute.ruling.final(None)
        dispute.evidence += [
            {**item, "added_by": self.actor_role, "at": self.timestamp} for item in self.evidence
        ]


class ChargedBack(Event):
    """A chargeback on the order closed the dispute: the card network decides now, and
    the marketplace pays no refund for this dispute."""

    reference: str
    amount: int
    outcome: str

    def change(self, dispute: Dispute) -> None:
        dispute.outcome = self.outcome
        dispute.standing_offer = None
        dispute.chargeback = {"reference": self.reference, "amount": self.amount,
                              "at": self.timestamp}  # fmt: skip


class SellerRejected(Event):
    reason: str
    evidence: list[EvidenceData]

    def change(self, dispute: Dispute) -> None:
        dispute.seller_responded_at = dispute.seller_responded_at or self.timestamp
        dispute.turn = Role.BUYER.value
        dispute.standing_offer = None
        dispute.contested = dispute.contested or bool(self.evidence)
        dispute.evidence += [
            {**item, "added_by": Role.SELLER.value, "at": self.timestamp} for item in self.evidence
        ]


class OfferMade(Event):
    offer_type: str
    amount: int | None
    message: str

    def change(self, dispute: Dispute) -> None:
        dispute.seller_responded_at = dispute.seller_responded_at or self.timestamp
        if dispute.state == rules.NEGOTIATING:
            dispute.turn = Role.BUYER.value
        dispute.standing_offer = Offer(self.offer_type, self.amount, self.message, self.timestamp)


class RequestRevised(Event):
    requested_resolution: str
    amount: int
    message: str

    def change(self, dispute: Dispute) -> None:
        dispute.requested_resolution = self.requested_resolution
        dispute.requested_amount = self.amount
        dispute.standing_offer = None
        dispute.turn = Role.SELLER.value


class Escalated(Event):
    reason: str

    def change(self, dispute: Dispute) -> None:
        dispute.escalated_at = self.timestamp
        dispute.turn = None
        dispute.standing_offer = None


class Withdrawn(Event):
    reason: str
    outcome: str

    def change(self, dispute: Dispute) -> None:
        dispute.outcome = self.outcome
        dispute.standing_offer = None


class BuyerResponseLapsed(Event):
    outcome: str

    def change(self, dispute: Dispute) -> None:
        dispute.outcome = self.outcome
        dispute.standing_offer = None


class EvidenceAdded(Event):
    evidence: list[EvidenceData]
    answers_info_request: bool

    def change(self, dispute: Dispute) -> None:
        dispute.evidence += [
            {**item, "added_by": self.actor_role, "at": self.timestamp} for item in self.evidence
        ]
        if self.answers_info_request:
            _mark_info_request(dispute, self.actor_role, "answered")


class MessagePosted(Event):
    body: str
    answers_info_request: bool

    def change(self, dispute: Dispute) -> None:
        dispute.messages.append(
            {"from_role": self.actor_role, "from_id": self.actor_id, "body": self.body,
             "at": self.timestamp}
        )  # fmt: skip
        if self.answers_info_request:
            _mark_info_request(dispute, self.actor_role, "answered")


class InfoRequested(Event):
    request_from: str
    question: str
    due_at: datetime

    def change(self, dispute: Dispute) -> None:
        _mark_info_request(dispute, self.request_from, "superseded")
        request: InfoRequestRecord = {
            "from": self.request_from,
            "question": self.question,
            "due_at": self.due_at,
            "requested_at": self.timestamp,
            "status": "open",
        }
        dispute.info_requests = [*dispute.info_requests, request]


class InfoRequestLapsed(Event):
    parties: list[str]

    def change(self, dispute: Dispute) -> None:
        for party in self.parties:
            _mark_info_request(dispute, party, "lapsed")


class ReturnShipped(Event):
    carrier: str
    tracking_number: str

    def change(self, dispute: Dispute) -> None:
        assert dispute.return_shipment is not None
        dispute.return_shipment = dispute.return_shipment.shipped(
            self.carrier, self.tracking_number, self.timestamp
        )


class ReturnShipmentLapsed(Event):
    outcome: str

    def change(self, dispute: Dispute) -> None:
        dispute.outcome = self.outcome


class ReturnDelivered(Event):
    delivered_at: datetime

    def change(self, dispute: Dispute) -> None:
        assert dispute.return_shipment is not None
        dispute.return_shipment = dispute.return_shipment.delivered(self.delivered_at)


class RefundStarted(Event):
    """The return leg ended and the refund is due (confirmed, or the seller was silent)."""

    refund: RefundData

    def change(self, dispute: Dispute) -> None:
        dispute.refund = Refund.from_dict(self.refund)


class ReturnConfirmed(RefundStarted):
    pass


class ReturnConfirmationLapsed(RefundStarted):
    pass


class ReturnContested(Event):
    reason: str
    evidence: list[EvidenceData]

    def change(self, dispute: Dispute) -> None:
        dispute.contested = True
        dispute.escalated_at = self.timestamp
        dispute.turn = None
        dispute.standing_offer = None
        dispute.evidence += [
            {**item, "added_by": Role.SELLER.value, "at": self.timestamp} for item in self.evidence
        ]


class RefundFailed(Event):
    reason: str

    def change(self, dispute: Dispute) -> None:
        assert dispute.refund is not None
        dispute.refund = dispute.refund.failed(self.reason, self.timestamp)


class RefundPaid(Event):
    reference: str
    paid_at: datetime
    outcome: str

    def change(self, dispute: Dispute) -> None:
        assert dispute.refund is not None
        dispute.refund = dispute.refund.paid(self.reference, self.paid_at)
        dispute.outcome = self.outcome


class DeadlineExtended(Event):
    deadline: str
    until: datetime
    previous_due_at: datetime
    reason: str


def _put_ruling(dispute: Dispute, event: Ruled | RulingIssued, final_at: datetime | None) -> None:
    """The ruling on the record (`ruling`), and open information requests closed."""
    dispute.ruling = Ruling(
        decision=event.decision,
        amount=event.amount,
        return_shipping_paid_by=event.return_shipping_paid_by,
        rationale=event.rationale,
        agent_id=event.actor_id,
        at=event.timestamp,
        final_at=final_at,
    )
    dispute.info_requests = [
        {**r, "status": "closed"} if r["status"] == "open" else r for r in dispute.info_requests
    ]


def _mark_info_request(dispute: Dispute, party: str, status: str) -> None:
    dispute.info_requests = [
        {**r, "status": status} if r["from"] == party and r["status"] == "open" else r
        for r in dispute.info_requests
    ]
