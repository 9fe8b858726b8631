"""The Dispute aggregate: a buyer-protection case from opening to closing.

Every command method checks its inputs and asks the transition table (`rules`) whether
the trigger is allowed and where it leads, and only then records one event. Events carry
the state and the deadlines they lead to, computed when they are recorded, so replay
only copies values: no clock, no policy lookup, no validation, no side effects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from shared import permissions
from shared.money import Money

from . import rules
from .errors import (
    DisputeAlreadyExists,
    DisputeNotFound,
    InvalidInput,
    OrderAlreadyShipped,
    OrderChargedBack,
    OrderNotFound,
    ProtectionEnded,
    RoleNotPermitted,
)
from .order import FUTURE_TOLERANCE, ID_NAMESPACE, Order
from .policy import Policy, add_business_days, days_after
from .values import (
    QUALITY_REASONS,
    SELLER_ERROR_REASONS,
    Actor,
    Context,
    Decision,
    EvidenceKind,
    OfferType,
    Outcome,
    Party,
    Reason,
    RequestedResolution,
    Role,
    Settlement,
    amount_in_range,
    aware,
    enum_value,
    evidence_items,
    parse_reason,
    text,
)


def dispute_id(order_ref: str) -> UUID:
    """Deterministic: one dispute per order, ever."""
    return uuid5(ID_NAMESPACE, f"dispute:{order_ref}")


# The command method behind each action trigger of the table (time-outs go through
# `fire_timeout`). A test checks this covers exactly the table's action triggers.
COMMAND_METHODS: dict[str, str] = {
    "accept": "accept",
    "reject": "reject",
    "offer": "offer",
    "accept_offer": "accept_offer",
    "revise": "revise",
    "escalate": "escalate",
    "withdraw": "withdraw",
    "evidence": "add_evidence",
    "messages": "post_message",
    "request_info": "request_info",
    "rule": "rule",
    "appeal": "file_appeal",
    "ship_return": "ship_return",
    "return_delivered": "return_delivered",
    "confirm_return": "confirm_return",
    "contest_return": "contest_return",
    "refund_paid": "refund_paid",
    "refund_failed": "refund_failed",
    "extend_deadline": "extend_deadline",
}


def _deadline(kind: str, due_from: str, due_at: datetime) -> dict[str, Any]:
    return {"kind": kind, "due_from": str(due_from), "due_at": due_at}


Deadlines = list[dict[str, Any]]


class Dispute(Aggregate):
    if TYPE_CHECKING:  # attributes set by the events; not dataclass fields
        # Facts fixed at opening
        order_ref: str
        buyer_id: str
        seller_id: str
        currency: str
        order_amount: int
        payment_method: str
        reason: str
        description: str
        policy: dict[str, Any]
        opened_at: datetime
        # The buyer's standing request
        requested_resolution: str
        requested_amount: int
        # Where the case stands
        state: str
        turn: str | None
        standing_offer: dict[str, Any] | None
        deadlines: Deadlines
        evidence: list[dict[str, Any]]
        messages: list[dict[str, Any]]
        info_requests: list[dict[str, Any]]
        seller_responded_at: datetime | None
        contested: bool
        escalated_at: datetime | None
        ruling: dict[str, Any] | None
        resolution: dict[str, Any] | None
        return_shipment: dict[str, Any] | None
        refund: dict[str, Any] | None
        outcome: str | None
        closed_at: datetime | None
        appeal: dict[str, Any] | None
        chargeback: dict[str, Any] | None

    # Set by events that histories recorded before appeals and chargebacks existed do not
    # have (and absent from their snapshots): read through these defaults.
    appeal = None
    chargeback = None

    # Events ----------------------------------------------------------------------------

    class Event(Aggregate.Event):
        """Every event: who caused it, for which request, and the state it leads to."""

        actor_role: str
        actor_id: str
        correlation_id: str
        # Events stored before traces were recorded have none: read it with getattr.
        traceparent: str | None
        state: str
        deadlines: Deadlines

        def apply(self, dispute: Dispute) -> None:
            dispute.state = self.state
            dispute.deadlines = [dict(d) for d in self.deadlines]
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
        evidence: list[dict[str, Any]]
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
            dispute.policy = dict(self.policy)
            dispute.opened_at = self.timestamp
            dispute.requested_resolution = self.requested_resolution
            dispute.requested_amount = self.amount
            dispute.turn = None
            dispute.standing_offer = None
            dispute.evidence = [
                {**item, "added_by": Role.BUYER.value, "at": self.timestamp}
                for item in self.evidence
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

        resolution: dict[str, Any]
        refund: dict[str, Any] | None
        return_shipment: dict[str, Any] | None
        outcome: str | None

        def change(self, dispute: Dispute) -> None:
            if dispute.seller_responded_at is None and self.actor_role == Role.SELLER:
                dispute.seller_responded_at = self.timestamp
            dispute.resolution = dict(self.resolution)
            dispute.refund = dict(self.refund) if self.refund else None
            dispute.return_shipment = dict(self.return_shipment) if self.return_shipment else None
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
            dispute._put_ruling(self, final_at=self.timestamp)

    class AppealRuled(Ruled):
        """Another agent decided the appeal: final, and takes effect at once."""

        def settled(self, dispute: Dispute) -> None:
            first = (dispute.appeal or {}).get("first_ruling") or {}
            super().settled(dispute)
            overturned = (first.get("decision"), first.get("amount")) != (
                self.decision,
                self.amount,
            )
            dispute.appeal = {
                **(dispute.appeal or {}),
                "decided_at": self.timestamp,
                "decided_by": self.actor_id,
                "overturned": overturned,
            }

    class RulingTookEffect(Settled):
        """The appeal window ended without an appeal: the ruling takes effect."""

        def settled(self, dispute: Dispute) -> None:
            assert dispute.ruling is not None
            dispute.ruling = {**dispute.ruling, "final_at": self.timestamp}

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
            dispute._put_ruling(self, final_at=self.final_at)

    class Appealed(Event):
        """The party the ruling went against appealed it, with a reason and new evidence."""

        reason: str
        evidence: list[dict[str, Any]]

        def change(self, dispute: Dispute) -> None:
            dispute.appeal = {
                "by": self.actor_role,
                "by_id": self.actor_id,
                "reason": self.reason,
                "at": self.timestamp,
                "first_ruling": dict(dispute.ruling or {}),
                "decided_at": None,
                "decided_by": None,
                "overturned": None,
            }
            if dispute.ruling is not None:
                dispute.ruling = {**dispute.ruling, "final_at": None}
            dispute.evidence += [
                {**item, "added_by": self.actor_role, "at": self.timestamp}
                for item in self.evidence
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
            dispute.chargeback = {
                "reference": self.reference,
                "amount": self.amount,
                "at": self.timestamp,
            }

    class SellerRejected(Event):
        reason: str
        evidence: list[dict[str, Any]]

        def change(self, dispute: Dispute) -> None:
            dispute.seller_responded_at = dispute.seller_responded_at or self.timestamp
            dispute.turn = Role.BUYER.value
            dispute.standing_offer = None
            dispute.contested = dispute.contested or bool(self.evidence)
            dispute.evidence += [
                {**item, "added_by": Role.SELLER.value, "at": self.timestamp}
                for item in self.evidence
            ]

    class OfferMade(Event):
        offer_type: str
        amount: int | None
        message: str

        def change(self, dispute: Dispute) -> None:
            dispute.seller_responded_at = dispute.seller_responded_at or self.timestamp
            if dispute.state == rules.NEGOTIATING:
                dispute.turn = Role.BUYER.value
            dispute.standing_offer = {
                "type": self.offer_type,
                "amount": self.amount,
                "message": self.message,
                "made_at": self.timestamp,
            }

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
        evidence: list[dict[str, Any]]
        answers_info_request: bool

        def change(self, dispute: Dispute) -> None:
            dispute.evidence += [
                {**item, "added_by": self.actor_role, "at": self.timestamp}
                for item in self.evidence
            ]
            if self.answers_info_request:
                dispute._mark_info_request(self.actor_role, "answered")

    class MessagePosted(Event):
        body: str
        answers_info_request: bool

        def change(self, dispute: Dispute) -> None:
            message = {"from_role": self.actor_role, "from_id": self.actor_id, "body": self.body}
            dispute.messages.append({**message, "at": self.timestamp})
            if self.answers_info_request:
                dispute._mark_info_request(self.actor_role, "answered")

    class InfoRequested(Event):
        request_from: str
        question: str
        due_at: datetime

        def change(self, dispute: Dispute) -> None:
            dispute._mark_info_request(self.request_from, "superseded")
            request = {"from": self.request_from, "question": self.question, "due_at": self.due_at}
            dispute.info_requests = [
                *dispute.info_requests,
                {**request, "requested_at": self.timestamp, "status": "open"},
            ]

    class InfoRequestLapsed(Event):
        parties: list[str]

        def change(self, dispute: Dispute) -> None:
            for party in self.parties:
                dispute._mark_info_request(party, "lapsed")

    class ReturnShipped(Event):
        carrier: str
        tracking_number: str

        def change(self, dispute: Dispute) -> None:
            assert dispute.return_shipment is not None
            dispute.return_shipment = {
                **dispute.return_shipment,
                "carrier": self.carrier,
                "tracking_number": self.tracking_number,
                "shipped_at": self.timestamp,
            }

    class ReturnShipmentLapsed(Event):
        outcome: str

        def change(self, dispute: Dispute) -> None:
            dispute.outcome = self.outcome

    class ReturnDelivered(Event):
        delivered_at: datetime

        def change(self, dispute: Dispute) -> None:
            assert dispute.return_shipment is not None
            dispute.return_shipment = {
                **dispute.return_shipment,
                "delivered_at": self.delivered_at,
            }

    class RefundStarted(Event):
        """The return leg ended and the refund is due (confirmed, or the seller was silent)."""

        refund: dict[str, Any]

        def change(self, dispute: Dispute) -> None:
            dispute.refund = dict(self.refund)

    class ReturnConfirmed(RefundStarted):
        pass

    class ReturnConfirmationLapsed(RefundStarted):
        pass

    class ReturnContested(Event):
        reason: str
        evidence: list[dict[str, Any]]

        def change(self, dispute: Dispute) -> None:
            dispute.contested = True
            dispute.escalated_at = self.timestamp
            dispute.turn = None
            dispute.standing_offer = None
            dispute.evidence += [
                {**item, "added_by": Role.SELLER.value, "at": self.timestamp}
                for item in self.evidence
            ]

    class RefundFailed(Event):
        reason: str

        def change(self, dispute: Dispute) -> None:
            assert dispute.refund is not None
            dispute.refund = {
                **dispute.refund,
                "failures": [*dispute.refund["failures"], {"reason": self.reason,
                                                          "at": self.timestamp}],
            }  # fmt: skip

    class RefundPaid(Event):
        reference: str
        paid_at: datetime
        outcome: str

        def change(self, dispute: Dispute) -> None:
            assert dispute.refund is not None
            dispute.refund = {**dispute.refund, "reference": self.reference,
                              "paid_at": self.paid_at}  # fmt: skip
            dispute.outcome = self.outcome

    class DeadlineExtended(Event):
        deadline: str
        until: datetime
        previous_due_at: datetime
        reason: str

    @staticmethod
    def create_id(order_ref: str) -> UUID:
        return dispute_id(order_ref)

    # Opening ---------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        ctx: Context,
        order: Order,
        *,
        reason: object,
        requested_resolution: object,
        amount: Money,
        description: object,
        evidence: Iterable[Mapping[str, Any]],
        policy: Policy,
    ) -> Dispute:
        if not permissions.may_command(ctx.actor.role, "open_dispute"):
            raise RoleNotPermitted("open", ctx.actor.role)
        if ctx.actor.id != order.buyer_id:
            raise OrderNotFound(order.order_ref)  # not the buyer's order: do not reveal it
        if order.dispute_id is not None:
            raise DisputeAlreadyExists(order.order_ref, order.dispute_id)
        chargebacks = getattr(order, "chargebacks", [])
        if chargebacks:
            raise OrderChargedBack(order.order_ref, chargebacks[0]["reference"])
        if ctx.at > order.protection_ends_at:
            raise ProtectionEnded(order.order_ref, order.protection_ends_at)
        reason_value = parse_reason(reason)
        resolution = enum_value(RequestedResolution, requested_resolution, "requested_resolution")
        if amount.currency != order.currency:
            raise InvalidInput(
                "amount.currency",
                "order_currency",
                f"amount.currency must be the order's currency, {order.currency}",
            )
        requested = amount_in_range(amount.amount, order.amount, "amount.amount")
        if reason_value == Reason.NOT_SHIPPED:
            cls._check_cancellation(order, resolution, requested)
        description_text = text(description, "description")
        items = evidence_items(evidence)
        if reason_value in QUALITY_REASONS and not any(
            i["kind"] in (EvidenceKind.PHOTO, EvidenceKind.VIDEO) for i in items
        ):
            raise InvalidInput(
                "evidence",
                "photo_or_video_required",
                f"a {reason_value} dispute needs at least one photo or video as evidence",
            )
        due = days_after(ctx.at, policy.seller_response_days_for(reason_value))
        dispute = cls._create(
            cls.Opened,
            **ctx.stamp(),
            state=rules.AWAITING_SELLER,
            deadlines=[_deadline("seller_response", Role.SELLER, due)],
            order_ref=order.order_ref,
            buyer_id=order.buyer_id,
            seller_id=order.seller_id,
            currency=order.currency,
            order_amount=order.amount,
            payment_method=order.payment_method,
            reason=reason_value,
            requested_resolution=resolution,
            amount=requested,
            description=description_text,
            evidence=items,
            policy=policy.as_dict(),
        )
        order.record_dispute(ctx, str(dispute.id))
        return dispute

    @staticmethod
    def _check_cancellation(order: Order, resolution: str, requested: int) -> None:
        """Cancelling before shipment: only unshipped, refund only, the full amount."""
        if order.shipped_at is not None:
            raise OrderAlreadyShipped(order.order_ref, order.shipped_at)
        if resolution != RequestedResolution.REFUND_ONLY:
            raise InvalidInput(
                "requested_resolution",
                "refund_only_when_not_shipped",
                "a not_shipped dispute asks for refund_only: there is nothing to return",
            )
        if requested != order.amount:
            raise InvalidInput(
                "amount.amount",
                "equals_order_amount",
                f"a not_shipped dispute asks for the full order amount, {order.amount}",
            )

    # Commands of the parties, agents and services --------------------------------------

    def accept(self, ctx: Context) -> None:
        """The seller accepts the buyer's standing request."""
        self._check(ctx, "accept")
        settlement, amount = self._request_terms()
        self._settle(ctx, "accept", self.SellerAccepted, settlement, amount)

    def reject(
        self, ctx: Context, *, reason: object, evidence: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        self._check(ctx, "reject")
        reason_text = text(reason, "reason")
        items = evidence_items(evidence)
        if self.reason == Reason.NOT_SHIPPED and not any(
            i["kind"] == EvidenceKind.TRACKING for i in items
        ):
            raise InvalidInput(
                "evidence",
                "tracking_required",
                "rejecting a not_shipped dispute needs proof of shipment: a tracking item",
            )
        self._record(
            ctx, "reject", self.SellerRejected, deadlines=self._turn_to(Role.BUYER, ctx.at),
            reason=reason_text, evidence=items,
        )  # fmt: skip

    def offer(
        self, ctx: Context, *, type: object, amount: object = None, message: object = None
    ) -> None:
        self._check(ctx, "offer")
        offer_type = enum_value(OfferType, type, "type")
        offer_amount = self._offer_amount(offer_type, amount)
        message_text = text(message, "message", required=False)
        deadlines = (
            self.deadlines
            if self.state == rules.UNDER_REVIEW
            else self._turn_to(Role.BUYER, ctx.at)
        )
        self._record(
            ctx, "offer", self.OfferMade, deadlines=deadlines, offer_type=offer_type,
            amount=offer_amount, message=message_text,
        )  # fmt: skip

    def accept_offer(self, ctx: Context) -> None:
        """The buyer accepts the seller's standing offer."""
        self._check(ctx, "accept_offer")
        assert self.standing_offer is not None  # the table's has_standing_offer guard
        settlement, amount = self._offer_terms(self.standing_offer)
        self._settle(ctx, "accept_offer", self.OfferAccepted, settlement, amount)

    def revise(
        self,
        ctx: Context,
        *,
        requested_resolution: object,
        amount: object,
        message: object = None,
    ) -> None:
        """The buyer counters with a new request."""
        self._check(ctx, "revise")
        resolution = enum_value(RequestedResolution, requested_resolution, "requested_resolution")
        new_amount = amount_in_range(self._minor_units(amount), self.order_amount)
        message_text = text(message, "message", required=False)
        self._record(
            ctx, "revise", self.RequestRevised, deadlines=self._turn_to(Role.SELLER, ctx.at),
            requested_resolution=resolution, amount=new_amount, message=message_text,
        )  # fmt: skip

    def escalate(self, ctx: Context, *, reason: object) -> None:
        self._check(ctx, "escalate")
        reason_text = text(reason, "reason")
        self._record(
            ctx, "escalate", self.Escalated, deadlines=self._review_deadlines(ctx.at),
            reason=reason_text,
        )  # fmt: skip

    def withdraw(self, ctx: Context, *, reason: object) -> None:
        self._check(ctx, "withdraw")
        reason_text = text(reason, "reason")
        self._record(
            ctx, "withdraw", self.Withdrawn, deadlines=[], reason=reason_text,
            outcome=Outcome.WITHDRAWN.value,
        )  # fmt: skip

    def add_evidence(self, ctx: Context, *, evidence: Iterable[Mapping[str, Any]]) -> None:
        self._check(ctx, "evidence")
        items = evidence_items(evidence)
        if not items:
            raise InvalidInput("evidence", "min_items", "evidence must list at least one item")
        answers = self._answers_info_request(ctx.actor)
        self._record(
            ctx, "evidence", self.EvidenceAdded, deadlines=self._without_info(ctx.actor, answers),
            evidence=items, answers_info_request=answers,
        )  # fmt: skip

    def post_message(self, ctx: Context, *, body: object) -> None:
        self._check(ctx, "messages")
        body_text = text(body, "body")
        answers = self._answers_info_request(ctx.actor)
        self._record(
            ctx, "messages", self.MessagePosted, deadlines=self._without_info(ctx.actor, answers),
            body=body_text, answers_info_request=answers,
        )  # fmt: skip

    def request_info(
        self, ctx: Context, *, from_: object, question: object, due_at: object = None
    ) -> None:
        self._check(ctx, "request_info")
        party = enum_value(Party, from_, "from")
        question_text = text(question, "question")
        due = (
            days_after(ctx.at, self.policy["info_request_days"])
            if due_at is None
            else aware(due_at, "due_at")
        )
        if due <= ctx.at:
            raise InvalidInput("due_at", "in_future", "due_at must be in the future")
        kind = f"info_request_{party}"
        deadlines = [d for d in self.deadlines if d["kind"] != kind]
        deadlines.append(_deadline(kind, party, due))
        self._record(
            ctx, "request_info", self.InfoRequested, deadlines=deadlines, request_from=party,
            question=question_text, due_at=due,
        )  # fmt: skip

    def rule(
        self,
        ctx: Context,
        *,
        decision: object,
        amount: object = None,
        return_shipping_paid_by: object = None,
        rationale: object,
    ) -> None:
        self._check(ctx, "rule")
        decision_value = enum_value(Decision, decision, "decision")
        rationale_text = text(rationale, "rationale")
        settlement, ruled_amount = self._ruling_terms(decision_value, amount)
        paid_by = None
        if return_shipping_paid_by is not None:
            if decision_value != Decision.RETURN_AND_REFUND:
                raise InvalidInput(
                    "return_shipping_paid_by",
                    "only_with_return",
                    "return_shipping_paid_by applies only to a return_and_refund decision",
                )
            paid_by = enum_value(Party, return_shipping_paid_by, "return_shipping_paid_by")
        ruling: dict[str, Any] = {
            "decision": decision_value, "amount": ruled_amount,
            "return_shipping_paid_by": paid_by, "rationale": rationale_text,
        }  # fmt: skip
        state = rules.destination("rule", self, ctx.actor.role, ctx.at, settlement, ctx.actor.id)
        if state == rules.RULED:
            final_at = days_after(ctx.at, self.policy["appeal_window_days"])
            against = rules.APPEALABLE_BY[decision_value]
            due_from = against[0] if len(against) == 1 else "parties"
            self._record(
                ctx, "rule", self.RulingIssued,
                deadlines=[_deadline("appeal_window", due_from, final_at)],
                final_at=final_at, **ruling,
            )  # fmt: skip
            return
        event_class = self.AppealRuled if self.state == rules.UNDER_APPEAL else self.Ruled
        self._settle(
            ctx, "rule", event_class, settlement, ruled_amount, shipping_paid_by=paid_by,
            **ruling,
        )  # fmt: skip

    def file_appeal(
        self, ctx: Context, *, reason: object, evidence: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        """The party the ruling went against appeals it, once, with new evidence."""
        self._check(ctx, "appeal")
        reason_text = text(reason, "reason")
        items = evidence_items(evidence)
        if not items:
            raise InvalidInput(
                "evidence", "min_items", "an appeal needs new evidence: at least one item"
            )
        due = add_business_days(ctx.at, self.policy["ruling_sla_business_days"])
        self._record(
            ctx, "appeal", self.Appealed, deadlines=[_deadline("appeal_ruling", Role.AGENT, due)],
            reason=reason_text, evidence=items,
        )  # fmt: skip

    def close_by_chargeback(self, ctx: Context, *, reference: str, amount: int) -> None:
        """A chargeback was reported on the order (recorded there, `Order.record_chargeback`):
        an open dispute closes with outcome chargeback."""
        self._check(ctx, "chargeback")
        self._record(
            ctx, "chargeback", self.ChargedBack, deadlines=[], reference=reference,
            amount=amount, outcome=Outcome.CHARGEBACK.value,
        )  # fmt: skip

    def ship_return(self, ctx: Context, *, carrier: object, tracking_number: object) -> None:
        self._check(ctx, "ship_return")
        carrier_text = text(carrier, "carrier", limit=100)
        number = text(tracking_number, "tracking_number", limit=100)
        deadlines = [d for d in self.deadlines if d["kind"] != "return_shipment"]
        self._record(
            ctx, "ship_return", self.ReturnShipped, deadlines=deadlines, carrier=carrier_text,
            tracking_number=number,
        )  # fmt: skip

    def return_delivered(self, ctx: Context, *, delivered_at: object) -> None:
        self._check(ctx, "return_delivered")
        delivered = aware(delivered_at, "delivered_at")
        if delivered > ctx.at + FUTURE_TOLERANCE:
            raise InvalidInput("delivered_at", "not_in_future", "delivered_at is in the future")
        shipped = (self.return_shipment or {}).get("shipped_at")
        if shipped is not None and delivered < shipped:
            raise InvalidInput(
                "delivered_at", "not_before_shipped", "delivered_at is before the return shipped"
            )
        due = days_after(delivered, self.policy["return_confirmation_days"])
        deadlines = [_deadline("return_confirmation", Role.SELLER, due)]
        self._record(
            ctx, "return_delivered", self.ReturnDelivered, deadlines=deadlines,
            delivered_at=delivered,
        )  # fmt: skip

    def confirm_return(self, ctx: Context) -> None:
        self._check(ctx, "confirm_return")
        self._start_refund(ctx, "confirm_return", self.ReturnConfirmed)

    def contest_return(
        self, ctx: Context, *, reason: object, evidence: Iterable[Mapping[str, Any]] = ()
    ) -> None:
        self._check(ctx, "contest_return")
        reason_text = text(reason, "reason")
        items = evidence_items(evidence)
        self._record(
            ctx, "contest_return", self.ReturnContested, deadlines=self._review_deadlines(ctx.at),
            reason=reason_text, evidence=items,
        )  # fmt: skip

    def refund_paid(self, ctx: Context, *, reference: object, paid_at: object) -> None:
        self._check(ctx, "refund_paid")
        reference_text = text(reference, "reference", limit=200)
        paid = aware(paid_at, "paid_at")
        if paid > ctx.at + FUTURE_TOLERANCE:
            raise InvalidInput("paid_at", "not_in_future", "paid_at is in the future")
        refund_amount = (self.refund or {}).get("amount", 0)
        outcome = (
            Outcome.REFUNDED_FULL
            if refund_amount >= self.order_amount
            else Outcome.REFUNDED_PARTIAL
        )
        self._record(
            ctx, "refund_paid", self.RefundPaid, deadlines=[], reference=reference_text,
            paid_at=paid, outcome=outcome.value,
        )  # fmt: skip

    def refund_failed(self, ctx: Context, *, reason: object) -> None:
        self._check(ctx, "refund_failed")
        reason_text = text(reason, "reason")
        self._record(
            ctx, "refund_failed", self.RefundFailed, deadlines=self.deadlines, reason=reason_text
        )

    def extend_deadline(
        self, ctx: Context, *, deadline: object, until: object, reason: object
    ) -> None:
        self._check(ctx, "extend_deadline")
        new_due = aware(until, "until")
        reason_text = text(reason, "reason")
        kinds = [d["kind"] for d in self.deadlines if d["kind"] != "refund_payout"]
        if deadline not in kinds:
            raise InvalidInput(
                "deadline",
                "pending_deadline",
                f"deadline must name a pending deadline: {', '.join(kinds)}",
            )
        current = next(d for d in self.deadlines if d["kind"] == deadline)
        if new_due <= current["due_at"] or new_due <= ctx.at:
            raise InvalidInput(
                "until",
                "later_than_current",
                f"until must be later than the current due time {current['due_at'].isoformat()}",
            )
        deadlines = [{**d, "due_at": new_due} if d is current else d for d in self.deadlines]
        self._record(
            ctx, "extend_deadline", self.DeadlineExtended, deadlines=deadlines,
            deadline=deadline, until=new_due, previous_due_at=current["due_at"],
            reason=reason_text,
        )  # fmt: skip

    # Time-outs (the deadline worker, role system) --------------------------------------

    def fire_timeout(self, ctx: Context, trigger: str) -> None:
        """Fires one time-out trigger; the table refuses it unless it is due now."""
        if trigger not in rules.TIMEOUT_TRIGGERS:
            raise InvalidInput("trigger", "timeout", f"{trigger} is not a time-out")
        self._check(ctx, trigger)
        if trigger == "seller_response_timeout":
            settlement, amount = self._request_terms()
            self._settle(ctx, trigger, self.SellerResponseLapsed, settlement, amount)
        elif trigger == "buyer_response_timeout":
            self._record(
                ctx, trigger, self.BuyerResponseLapsed, deadlines=[],
                outcome=Outcome.BUYER_LAPSED.value,
            )  # fmt: skip
        elif trigger == "return_shipment_timeout":
            self._record(
                ctx, trigger, self.ReturnShipmentLapsed, deadlines=[],
                outcome=Outcome.RETURN_NOT_SHIPPED.value,
            )  # fmt: skip
        elif trigger == "return_confirmation_timeout":
            self._start_refund(ctx, trigger, self.ReturnConfirmationLapsed)
        elif trigger == "appeal_window_timeout":
            assert self.ruling is not None  # the table's source state is `ruled`
            settlement, ruled_amount = self._terms_of(self.ruling)
            self._settle(
                ctx, trigger, self.RulingTookEffect, settlement, ruled_amount,
                shipping_paid_by=self.ruling.get("return_shipping_paid_by"),
            )  # fmt: skip
        elif trigger == "info_request_timeout":
            lapsed = [
                d for d in self.deadlines
                if d["kind"].startswith("info_request_") and d["due_at"] <= ctx.at
            ]  # fmt: skip
            self._record(
                ctx, trigger, self.InfoRequestLapsed,
                deadlines=[d for d in self.deadlines if d not in lapsed],
                parties=[d["due_from"] for d in lapsed],
            )  # fmt: skip

    # Queries ---------------------------------------------------------------------------

    @property
    def money(self) -> Money:
        return Money(self.order_amount, self.currency)

    def visible_to(self, actor: Actor) -> bool:
        return permissions.may_see(actor.role, actor.id, self.buyer_id, self.seller_id)

    def allowed_actions(self, actor: Actor) -> list[str]:
        if not self.visible_to(actor):
            return []
        return rules.allowed_actions(self, actor.role, actor.id)

    def due_timeouts(self, at: datetime) -> list[str]:
        return rules.due_timeouts(self, at)

    # Internals -------------------------------------------------------------------------

    def _check(self, ctx: Context, trigger: str) -> None:
        """Before looking at the input: a party acts only on its own dispute (to anyone
        else it does not exist), then the table decides whether the role may ever pull
        the trigger and whether the dispute's state allows it now."""
        if not self.visible_to(ctx.actor):
            raise DisputeNotFound(str(self.id))
        rules.check(trigger, self, ctx.actor.role, ctx.at, ctx.actor.id)

    def _record(
        self,
        ctx: Context,
        trigger: str,
        event_class: type[Dispute.Event],
        *,
        deadlines: Deadlines,
        settlement: str | None = None,
        **fields: Any,
    ) -> None:
        state = rules.destination(trigger, self, ctx.actor.role, ctx.at, settlement, ctx.actor.id)
        self.trigger_event(event_class, **ctx.stamp(), state=state, deadlines=deadlines, **fields)

    def _settle(
        self,
        ctx: Context,
        trigger: str,
        event_class: type[Dispute.Settled],
        settlement: str,
        settled_amount: int | None,
        *,
        shipping_paid_by: str | None = None,
        **fields: Any,
    ) -> None:
        state = rules.destination(trigger, self, ctx.actor.role, ctx.at, settlement, ctx.actor.id)
        amount = settled_amount
        resolution = {"settlement": settlement, "amount": amount, "via": trigger}
        refund = return_shipment = outcome = None
        deadlines: Deadlines = []
        if state == rules.REFUND_PENDING:
            assert amount is not None
            refund = self._new_refund(amount, ctx.at)
            deadlines = [_deadline("refund_payout", Role.SERVICE, refund["expected_by"])]
        elif state == rules.AWAITING_RETURN:
            paid_by = shipping_paid_by or (
                Role.SELLER if self.reason in SELLER_ERROR_REASONS else Role.BUYER
            )
            return_shipment = {
                "address": self.policy["return_address"],
                "shipping_paid_by": str(paid_by),
                "carrier": None,
                "tracking_number": None,
                "shipped_at": None,
                "delivered_at": None,
            }
            due = days_after(ctx.at, self.policy["return_window_days"])
            deadlines = [_deadline("return_shipment", Role.BUYER, due)]
        elif settlement == Settlement.REPLACEMENT:
            outcome = Outcome.REPLACEMENT.value
        else:
            outcome = Outcome.SELLER_FAVOURED.value
        self.trigger_event(
            event_class, **ctx.stamp(), state=state, deadlines=deadlines, resolution=resolution,
            refund=refund, return_shipment=return_shipment, outcome=outcome, **fields,
        )  # fmt: skip

    def _start_refund(
        self, ctx: Context, trigger: str, event_class: type[Dispute.RefundStarted]
    ) -> None:
        refund = self._new_refund(self._resolution_amount(), ctx.at)
        deadlines = [_deadline("refund_payout", Role.SERVICE, refund["expected_by"])]
        self._record(ctx, trigger, event_class, deadlines=deadlines, refund=refund)

    def _new_refund(self, amount: int, at: datetime) -> dict[str, Any]:
        days = self.policy["payout_business_days"][self.payment_method]
        return {
            "amount": min(amount, self.order_amount),
            "currency": self.currency,
            "started_at": at,
            "expected_by": add_business_days(at, days),
            "failures": [],
            "reference": None,
            "paid_at": None,
        }

    def _request_terms(self) -> tuple[str, int]:
        if self.requested_resolution == RequestedResolution.RETURN_AND_REFUND:
            return Settlement.RETURN.value, self.requested_amount
        return Settlement.REFUND.value, self.requested_amount

    def _offer_terms(self, offer: Mapping[str, Any]) -> tuple[str, int | None]:
        kind = offer["type"]
        if kind == OfferType.REPLACEMENT:
            return Settlement.REPLACEMENT.value, None
        if kind == OfferType.RETURN_AND_REFUND:
            return Settlement.RETURN.value, offer["amount"]
        return Settlement.REFUND.value, offer["amount"]

    def _ruling_terms(self, decision: str, amount: object) -> tuple[str, int | None]:
        if decision == Decision.SELLER_FAVOURED:
            self._no_amount(amount, "a seller_favoured decision")
            return Settlement.NOTHING.value, None
        value = self._amount_for(decision, amount)
        kind = Settlement.RETURN if decision == Decision.RETURN_AND_REFUND else Settlement.REFUND
        return kind.value, value

    @staticmethod
    def _terms_of(ruling: Mapping[str, Any]) -> tuple[str, int | None]:
        """What a recorded (already validated) ruling settles on."""
        decision = ruling["decision"]
        if decision == Decision.SELLER_FAVOURED:
            return Settlement.NOTHING.value, None
        if decision == Decision.RETURN_AND_REFUND:
            return Settlement.RETURN.value, ruling["amount"]
        return Settlement.REFUND.value, ruling["amount"]

    def _put_ruling(self, event: Any, final_at: datetime | None) -> None:
        """The ruling on the record (`ruling`), and open information requests closed."""
        self.ruling = {
            "decision": event.decision,
            "amount": event.amount,
            "return_shipping_paid_by": event.return_shipping_paid_by,
            "rationale": event.rationale,
            "agent_id": event.actor_id,
            "at": event.timestamp,
            "final_at": final_at,
        }
        self.info_requests = [
            {**r, "status": "closed"} if r["status"] == "open" else r for r in self.info_requests
        ]

    def _offer_amount(self, offer_type: str, amount: object) -> int | None:
        if offer_type == OfferType.REPLACEMENT:
            self._no_amount(amount, "a replacement offer")
            return None
        return self._amount_for(offer_type, amount)

    def _amount_for(self, kind: str, amount: object) -> int:
        """The amount of a full, partial or return-and-refund offer or ruling."""
        if kind == OfferType.FULL_REFUND:
            if amount is not None and self._minor_units(amount) != self.order_amount:
                raise InvalidInput(
                    "amount", "equals_order_amount",
                    f"a full refund is the order amount, {self.order_amount}; omit amount",
                )  # fmt: skip
            return self.order_amount
        if kind == OfferType.PARTIAL_REFUND:
            if amount is None:
                raise InvalidInput("amount", "required", "a partial refund needs an amount")
            value = amount_in_range(self._minor_units(amount), self.order_amount)
            if value >= self.order_amount:
                raise InvalidInput(
                    "amount", "below_order_amount",
                    f"a partial refund must be less than the order amount, {self.order_amount}",
                )  # fmt: skip
            return value
        if amount is None:
            return self.order_amount
        return amount_in_range(self._minor_units(amount), self.order_amount)

    def _minor_units(self, amount: object) -> object:
        """Accepts an int of minor units or Money in the dispute's currency."""
        if isinstance(amount, Money):
            if amount.currency != self.currency:
                raise InvalidInput(
                    "amount.currency", "order_currency",
                    f"amount.currency must be the order's currency, {self.currency}",
                )  # fmt: skip
            return amount.amount
        return amount

    @staticmethod
    def _no_amount(amount: object, what: str) -> None:
        if amount is not None:
            raise InvalidInput("amount", "not_applicable", f"{what} takes no amount")

    def _resolution_amount(self) -> int:
        assert self.resolution is not None
        return int(self.resolution["amount"])

    def _turn_to(self, party: Role, at: datetime) -> Deadlines:
        kind = "buyer_response" if party == Role.BUYER else "seller_response"
        due = days_after(at, self.policy["offer_response_days"])
        kept = [d for d in self.deadlines if d["kind"] not in ("buyer_response", "seller_response")]
        return [*kept, _deadline(kind, party, due)]

    def _review_deadlines(self, at: datetime) -> Deadlines:
        due = add_business_days(at, self.policy["ruling_sla_business_days"])
        return [_deadline("ruling", Role.AGENT, due)]

    def _answers_info_request(self, actor: Actor) -> bool:
        return self.state in rules.REVIEWING and any(
            r["from"] == actor.role and r["status"] == "open" for r in self.info_requests
        )

    def _without_info(self, actor: Actor, answered: bool) -> Deadlines:
        if not answered:
            return self.deadlines
        return [d for d in self.deadlines if d["kind"] != f"info_request_{actor.role}"]

    def _mark_info_request(self, party: str, status: str) -> None:
        self.info_requests = [
            {**r, "status": status} if r["from"] == party and r["status"] == "open" else r
            for r in self.info_requests
        ]
