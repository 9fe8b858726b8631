"""The Dispute aggregate: a buyer-protection case from opening to closing.

Every command method checks its inputs and asks the transition table (`rules`, through
`guards`) whether the trigger is allowed and where it leads, and only then records one
event. Events (`events.py`) carry the state and the deadlines they lead to, computed when
they are recorded, so replay only copies values: no clock, no policy lookup, no
validation, no side effects. Settlement terms are `terms.py`'s, deadline arithmetic
`deadlines.py`'s.
Over 400 lines: one method per command and per time-out of the aggregate, nothing else.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from shared import permissions
from shared.money import Money

from . import deadlines, events, guards, opening, rules, terms
from .commands import EvidenceItem, evidence_mappings
from .errors import (
    DisputeNotFound,
    InvalidInput,
)
from .order import FUTURE_TOLERANCE, ID_NAMESPACE, Order
from .policy import Policy, days_after
from .rules import DeadlineKind
from .state import (
    Appeal,
    ChargebackRecord,
    Deadline,
    EvidenceRecord,
    InfoRequestRecord,
    MessageRecord,
    Offer,
    Refund,
    Resolution,
    Return,
    Ruling,
    upcast_snapshot_v1,
)
from .values import (
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
    text,
)


def dispute_id(order_ref: str) -> UUID:
    """Deterministic: one dispute per order, ever."""
    return uuid5(ID_NAMESPACE, f"dispute:{order_ref}")


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
        policy: Policy
        opened_at: datetime
        # The buyer's standing request
        requested_resolution: str
        requested_amount: int
        # Where the case stands
        state: str
        turn: str | None
        standing_offer: Offer | None
        deadlines: list[Deadline]
        evidence: list[EvidenceRecord]
        messages: list[MessageRecord]
        info_requests: list[InfoRequestRecord]
        seller_responded_at: datetime | None
        contested: bool
        escalated_at: datetime | None
        ruling: Ruling | None
        resolution: Resolution | None
        return_shipment: Return | None
        refund: Refund | None
        outcome: str | None
        closed_at: datetime | None
        appeal: Appeal | None
        chargeback: ChargebackRecord | None

    # Set by events that histories recorded before appeals and chargebacks existed do not
    # have (and absent from their snapshots): read through these defaults.
    appeal = None
    chargeback = None

    # Snapshots: 2 holds value objects (state.py); 1, the mappings the code before them
    # stored, is turned into them when a snapshot of version 1 is loaded.
    class_version = 2

    @staticmethod
    def upcast_v1_v2(state: dict[str, Any]) -> None:
        upcast_snapshot_v1(state)

    # Events ----------------------------------------------------------------------------

    # Its events (events.py), each nested here as `Dispute.<Name>`: the class histories
    # store, under the topic `services.dispute.domain.dispute:Dispute.<Name>`.
    class Event(events.Event):
        """Every event: who caused it, for which request, and the state it leads to."""

    # fmt: off
    class Opened(events.Opened, Event): ...
    class Settled(events.Settled, Event): ...
    class SellerAccepted(events.SellerAccepted, Settled): ...
    class OfferAccepted(events.OfferAccepted, Settled): ...
    class SellerResponseLapsed(events.SellerResponseLapsed, Settled): ...
    class Ruled(events.Ruled, Settled): ...
    class AppealRuled(events.AppealRuled, Ruled): ...
    class RulingTookEffect(events.RulingTookEffect, Settled): ...
    class RulingIssued(events.RulingIssued, Event): ...
    class Appealed(events.Appealed, Event): ...
    class ChargedBack(events.ChargedBack, Event): ...
    class SellerRejected(events.SellerRejected, Event): ...
    class OfferMade(events.OfferMade, Event): ...
    class RequestRevised(events.RequestRevised, Event): ...
    class Escalated(events.Escalated, Event): ...
    class Withdrawn(events.Withdrawn, Event): ...
    class BuyerResponseLapsed(events.BuyerResponseLapsed, Event): ...
    class EvidenceAdded(events.EvidenceAdded, Event): ...
    class MessagePosted(events.MessagePosted, Event): ...
    class InfoRequested(events.InfoRequested, Event): ...
    class InfoRequestLapsed(events.InfoRequestLapsed, Event): ...
    class ReturnShipped(events.ReturnShipped, Event): ...
    class ReturnShipmentLapsed(events.ReturnShipmentLapsed, Event): ...
    class ReturnDelivered(events.ReturnDelivered, Event): ...
    class RefundStarted(events.RefundStarted, Event): ...
    class ReturnConfirmed(events.ReturnConfirmed, RefundStarted): ...
    class ReturnConfirmationLapsed(events.ReturnConfirmationLapsed, RefundStarted): ...
    class ReturnContested(events.ReturnContested, Event): ...
    class RefundFailed(events.RefundFailed, Event): ...
    class RefundPaid(events.RefundPaid, Event): ...
    class DeadlineExtended(events.DeadlineExtended, Event): ...
    # fmt: on

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
        request = opening.check(
            ctx, order, reason=reason, requested_resolution=requested_resolution,
            amount=amount, description=description, evidence=evidence, policy=policy,
        )  # fmt: skip
        first = deadlines.deadline(DeadlineKind.SELLER_RESPONSE, request.seller_response_due)
        dispute = cls._create(
            cls.Opened,
            **ctx.stamp(),
            state=rules.AWAITING_SELLER,
            deadlines=[first.as_dict()],
            order_ref=order.order_ref,
            buyer_id=order.buyer_id,
            seller_id=order.seller_id,
            currency=order.currency,
            order_amount=order.amount,
            payment_method=order.payment_method,
            reason=request.reason,
            requested_resolution=request.requested_resolution,
            amount=request.amount,
            description=request.description,
            evidence=request.evidence,
            policy=policy.as_dict(),
        )
        order.record_dispute(ctx, str(dispute.id))
        return dispute

    # Commands of the parties, agents and services --------------------------------------

    def accept(self, ctx: Context) -> None:
        """The seller accepts the buyer's standing request."""
        self._check(ctx, "accept")
        settlement, amount = terms.of_request(self.requested_resolution, self.requested_amount)
        self._settle(ctx, "accept", self.SellerAccepted, settlement, amount)

    def reject(self, ctx: Context, *, reason: str, evidence: Sequence[EvidenceItem] = ()) -> None:
        self._check(ctx, "reject")
        reason_text = text(reason, "reason")
        items = evidence_items(evidence_mappings(evidence))
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
        self,
        ctx: Context,
        *,
        type: OfferType,
        amount: Money | None = None,
        message: str | None = None,
    ) -> None:
        self._check(ctx, "offer")
        offer_type = enum_value(OfferType, type, "type")
        offer_amount = terms.offer_amount(offer_type, amount, self.money)
        message_text = text(message, "message", required=False)
        pending = (
            self.deadlines
            if self.state == rules.UNDER_REVIEW
            else self._turn_to(Role.BUYER, ctx.at)
        )
        self._record(
            ctx, "offer", self.OfferMade, deadlines=pending, offer_type=offer_type,
            amount=offer_amount, message=message_text,
        )  # fmt: skip

    def accept_offer(self, ctx: Context) -> None:
        """The buyer accepts the seller's standing offer."""
        self._check(ctx, "accept_offer")
        assert self.standing_offer is not None  # the table's has_standing_offer guard
        settlement, amount = terms.of_offer(self.standing_offer)
        self._settle(ctx, "accept_offer", self.OfferAccepted, settlement, amount)

    def revise(
        self,
        ctx: Context,
        *,
        requested_resolution: RequestedResolution,
        amount: Money,
        message: str | None = None,
    ) -> None:
        """The buyer counters with a new request."""
        self._check(ctx, "revise")
        resolution = enum_value(RequestedResolution, requested_resolution, "requested_resolution")
        new_amount = amount_in_range(terms.minor_units(amount, self.money), self.order_amount)
        message_text = text(message, "message", required=False)
        self._record(
            ctx, "revise", self.RequestRevised, deadlines=self._turn_to(Role.SELLER, ctx.at),
            requested_resolution=resolution, amount=new_amount, message=message_text,
        )  # fmt: skip

    def escalate(self, ctx: Context, *, reason: str) -> None:
        self._check(ctx, "escalate")
        reason_text = text(reason, "reason")
        self._record(
            ctx, "escalate", self.Escalated, deadlines=self._review_deadlines(ctx.at),
            reason=reason_text,
        )  # fmt: skip

    def withdraw(self, ctx: Context, *, reason: str) -> None:
        self._check(ctx, "withdraw")
        reason_text = text(reason, "reason")
        self._record(
            ctx, "withdraw", self.Withdrawn, deadlines=[], reason=reason_text,
            outcome=Outcome.WITHDRAWN.value,
        )  # fmt: skip

    def add_evidence(self, ctx: Context, *, evidence: Sequence[EvidenceItem]) -> None:
        self._check(ctx, "evidence")
        items = evidence_items(evidence_mappings(evidence))
        if not items:
            raise InvalidInput("evidence", "min_items", "evidence must list at least one item")
        answers = self._answers_info_request(ctx.actor)
        pending = deadlines.info_answered(self.deadlines, ctx.actor.role, answers)
        self._record(
            ctx, "evidence", self.EvidenceAdded, deadlines=pending, evidence=items,
            answers_info_request=answers,
        )  # fmt: skip

    def post_message(self, ctx: Context, *, body: str) -> None:
        self._check(ctx, "messages")
        body_text = text(body, "body")
        answers = self._answers_info_request(ctx.actor)
        pending = deadlines.info_answered(self.deadlines, ctx.actor.role, answers)
        self._record(
            ctx, "messages", self.MessagePosted, deadlines=pending, body=body_text,
            answers_info_request=answers,
        )  # fmt: skip

    def request_info(
        self, ctx: Context, *, from_: Party, question: str, due_at: datetime | None = None
    ) -> None:
        self._check(ctx, "request_info")
        party = enum_value(Party, from_, "from")
        question_text = text(question, "question")
        due = (
            days_after(ctx.at, self.policy.info_request_days)
            if due_at is None
            else aware(due_at, "due_at")
        )
        if due <= ctx.at:
            raise InvalidInput("due_at", "in_future", "due_at must be in the future")
        self._record(
            ctx, "request_info", self.InfoRequested,
            deadlines=deadlines.info_request(self.deadlines, party, due), request_from=party,
            question=question_text, due_at=due,
        )  # fmt: skip

    def rule(
        self,
        ctx: Context,
        *,
        decision: Decision,
        amount: Money | None = None,
        return_shipping_paid_by: Party | None = None,
        rationale: str,
    ) -> None:
        self._check(ctx, "rule")
        decision_value = enum_value(Decision, decision, "decision")
        rationale_text = text(rationale, "rationale")
        settlement, ruled_amount = terms.of_decision(decision_value, amount, self.money)
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
        state = guards.destination("rule", self, ctx.actor.role, ctx.at, settlement, ctx.actor.id)
        if state == rules.RULED:
            final_at = days_after(ctx.at, self.policy.appeal_window_days)
            window = deadlines.appeal_window(final_at, rules.APPEALABLE_BY[decision_value])
            self._record(
                ctx, "rule", self.RulingIssued, deadlines=window, final_at=final_at, **ruling
            )
            return
        event_class = self.AppealRuled if self.state == rules.UNDER_APPEAL else self.Ruled
        self._settle(
            ctx, "rule", event_class, settlement, ruled_amount, shipping_paid_by=paid_by,
            **ruling,
        )  # fmt: skip

    def file_appeal(
        self, ctx: Context, *, reason: str, evidence: Sequence[EvidenceItem] = ()
    ) -> None:
        """The party the ruling went against appeals it, once, with new evidence."""
        self._check(ctx, "appeal")
        reason_text = text(reason, "reason")
        items = evidence_items(evidence_mappings(evidence))
        if not items:
            raise InvalidInput(
                "evidence", "min_items", "an appeal needs new evidence: at least one item"
            )
        due = deadlines.appeal_ruling(ctx.at, self.policy.ruling_sla_business_days)
        self._record(
            ctx, "appeal", self.Appealed, deadlines=due, reason=reason_text, evidence=items
        )

    def close_by_chargeback(self, ctx: Context, *, reference: str, amount: int) -> None:
        """A chargeback was reported on the order (recorded there, `Order.record_chargeback`):
        an open dispute closes with outcome chargeback."""
        self._check(ctx, "chargeback")
        self._record(
            ctx, "chargeback", self.ChargedBack, deadlines=[], reference=reference,
            amount=amount, outcome=Outcome.CHARGEBACK.value,
        )  # fmt: skip

    def ship_return(self, ctx: Context, *, carrier: str, tracking_number: str) -> None:
        self._check(ctx, "ship_return")
        carrier_text = text(carrier, "carrier", limit=100)
        number = text(tracking_number, "tracking_number", limit=100)
        pending = deadlines.without(self.deadlines, DeadlineKind.RETURN_SHIPMENT)
        self._record(
            ctx, "ship_return", self.ReturnShipped, deadlines=pending, carrier=carrier_text,
            tracking_number=number,
        )  # fmt: skip

    def return_delivered(self, ctx: Context, *, delivered_at: datetime) -> None:
        self._check(ctx, "return_delivered")
        delivered = aware(delivered_at, "delivered_at")
        if delivered > ctx.at + FUTURE_TOLERANCE:
            raise InvalidInput("delivered_at", "not_in_future", "delivered_at is in the future")
        shipped = None if self.return_shipment is None else self.return_shipment.shipped_at
        if shipped is not None and delivered < shipped:
            raise InvalidInput(
                "delivered_at", "not_before_shipped", "delivered_at is before the return shipped"
            )
        due = days_after(delivered, self.policy.return_confirmation_days)
        pending = [deadlines.deadline(DeadlineKind.RETURN_CONFIRMATION, due)]
        self._record(
            ctx, "return_delivered", self.ReturnDelivered, deadlines=pending,
            delivered_at=delivered,
        )  # fmt: skip

    def confirm_return(self, ctx: Context) -> None:
        self._check(ctx, "confirm_return")
        self._start_refund(ctx, "confirm_return", self.ReturnConfirmed)

    def contest_return(
        self, ctx: Context, *, reason: str, evidence: Sequence[EvidenceItem] = ()
    ) -> None:
        self._check(ctx, "contest_return")
        reason_text = text(reason, "reason")
        items = evidence_items(evidence_mappings(evidence))
        self._record(
            ctx, "contest_return", self.ReturnContested, deadlines=self._review_deadlines(ctx.at),
            reason=reason_text, evidence=items,
        )  # fmt: skip

    def refund_paid(self, ctx: Context, *, reference: str, paid_at: datetime) -> None:
        self._check(ctx, "refund_paid")
        reference_text = text(reference, "reference", limit=200)
        paid = aware(paid_at, "paid_at")
        if paid > ctx.at + FUTURE_TOLERANCE:
            raise InvalidInput("paid_at", "not_in_future", "paid_at is in the future")
        refund_amount = 0 if self.refund is None else self.refund.amount
        outcome = (
            Outcome.REFUNDED_FULL
            if refund_amount >= self.order_amount
            else Outcome.REFUNDED_PARTIAL
        )
        self._record(
            ctx, "refund_paid", self.RefundPaid, deadlines=[], reference=reference_text,
            paid_at=paid, outcome=outcome.value,
        )  # fmt: skip

    def refund_failed(self, ctx: Context, *, reason: str) -> None:
        self._check(ctx, "refund_failed")
        reason_text = text(reason, "reason")
        self._record(
            ctx, "refund_failed", self.RefundFailed, deadlines=self.deadlines, reason=reason_text
        )

    def extend_deadline(self, ctx: Context, *, deadline: str, until: datetime, reason: str) -> None:
        self._check(ctx, "extend_deadline")
        new_due = aware(until, "until")
        reason_text = text(reason, "reason")
        pending, previous = deadlines.extended(self.deadlines, deadline, new_due, ctx.at)
        self._record(
            ctx, "extend_deadline", self.DeadlineExtended, deadlines=pending,
            deadline=deadline, until=new_due, previous_due_at=previous, reason=reason_text,
        )  # fmt: skip

    # Time-outs (the deadline worker, role system) --------------------------------------

    def fire_timeout(self, ctx: Context, trigger: str) -> None:
        """Fires one time-out trigger; the table refuses it unless it is due now."""
        if trigger not in rules.TIMEOUT_TRIGGERS:
            raise InvalidInput("trigger", "timeout", f"{trigger} is not a time-out")
        self._check(ctx, trigger)
        LAPSES[trigger](self, ctx, trigger)

    def _seller_silent(self, ctx: Context, trigger: str) -> None:
        """The seller did not answer in time: the buyer's request is granted."""
        settlement, amount = terms.of_request(self.requested_resolution, self.requested_amount)
        self._settle(ctx, trigger, self.SellerResponseLapsed, settlement, amount)

    def _buyer_silent(self, ctx: Context, trigger: str) -> None:
        self._record(
            ctx, trigger, self.BuyerResponseLapsed, deadlines=[],
            outcome=Outcome.BUYER_LAPSED.value,
        )  # fmt: skip

    def _return_not_shipped(self, ctx: Context, trigger: str) -> None:
        self._record(
            ctx, trigger, self.ReturnShipmentLapsed, deadlines=[],
            outcome=Outcome.RETURN_NOT_SHIPPED.value,
        )  # fmt: skip

    def _return_not_confirmed(self, ctx: Context, trigger: str) -> None:
        self._start_refund(ctx, trigger, self.ReturnConfirmationLapsed)

    def _ruling_takes_effect(self, ctx: Context, trigger: str) -> None:
        assert self.ruling is not None  # the table's source state is `ruled`
        settlement, ruled_amount = terms.of_ruling(self.ruling)
        self._settle(
            ctx, trigger, self.RulingTookEffect, settlement, ruled_amount,
            shipping_paid_by=self.ruling.return_shipping_paid_by,
        )  # fmt: skip

    def _info_requests_lapse(self, ctx: Context, trigger: str) -> None:
        lapsed = deadlines.lapsed(self.deadlines, trigger, ctx.at)
        self._record(
            ctx, trigger, self.InfoRequestLapsed,
            deadlines=[d for d in self.deadlines if d not in lapsed],
            parties=[d.due_from for d in lapsed],
        )  # fmt: skip

    # Queries ---------------------------------------------------------------------------

    @property
    def money(self) -> Money:
        return Money(self.order_amount, self.currency)

    def clone(self) -> Dispute:
        """A copy that commands and events can change without changing this one.

        Events replace the aggregate's attributes with new values (frozen value objects,
        new lists), except the lists they append to, `evidence` and `messages`, and the
        library's pending events: every list and dict the aggregate holds is copied, one
        level deep; the records in them are never changed in place (the test of this
        method applies every event type of the recorded histories to a clone and checks
        the original did not move)."""
        twin = copy.copy(self)
        state = twin.__dict__
        for name, value in state.items():
            if type(value) is list or type(value) is dict:
                state[name] = value.copy()
        return twin

    def visible_to(self, actor: Actor) -> bool:
        return permissions.may_see(actor.role, actor.id, self.buyer_id, self.seller_id)

    def allowed_actions(self, actor: Actor, at: datetime | None = None) -> list[str]:
        """What `actor` may do, at time `at` (None: whatever the time)."""
        if not self.visible_to(actor):
            return []
        return guards.allowed_actions(self, actor.role, actor.id, at)

    def due_timeouts(self, at: datetime) -> list[str]:
        return guards.due_timeouts(self, at)

    # Internals -------------------------------------------------------------------------

    def _check(self, ctx: Context, trigger: str) -> None:
        """Before looking at the input: a party acts only on its own dispute (to anyone
        else it does not exist), then the table decides whether the role may ever pull
        the trigger and whether the dispute's state allows it now."""
        if not self.visible_to(ctx.actor):
            raise DisputeNotFound(str(self.id))
        guards.check(trigger, self, ctx.actor.role, ctx.at, ctx.actor.id)

    def _record(
        self,
        ctx: Context,
        trigger: str,
        event_class: type[events.Event],
        *,
        deadlines: list[Deadline],
        settlement: str | None = None,
        **fields: Any,
    ) -> None:
        state = guards.destination(trigger, self, ctx.actor.role, ctx.at, settlement, ctx.actor.id)
        pending = [d.as_dict() for d in deadlines]
        self.trigger_event(event_class, **ctx.stamp(), state=state, deadlines=pending, **fields)

    def _settle(
        self,
        ctx: Context,
        trigger: str,
        event_class: type[events.Settled],
        settlement: str,
        settled_amount: int | None,
        *,
        shipping_paid_by: str | None = None,
        **fields: Any,
    ) -> None:
        """Records a resolution and what it starts: a refund, a return, or the end."""
        state = guards.destination(trigger, self, ctx.actor.role, ctx.at, settlement, ctx.actor.id)
        resolution = Resolution(settlement, settled_amount, trigger)
        refund = return_shipment = outcome = None
        pending: list[Deadline] = []
        if state == rules.REFUND_PENDING:
            assert settled_amount is not None
            refund = self._new_refund(settled_amount, ctx.at)
            pending = [deadlines.deadline(DeadlineKind.REFUND_PAYOUT, refund.expected_by)]
        elif state == rules.AWAITING_RETURN:
            return_shipment = terms.new_return(
                self.policy.return_address, self.reason, shipping_paid_by
            )
            due = days_after(ctx.at, self.policy.return_window_days)
            pending = [deadlines.deadline(DeadlineKind.RETURN_SHIPMENT, due)]
        elif settlement == Settlement.REPLACEMENT:
            outcome = Outcome.REPLACEMENT.value
        else:
            outcome = Outcome.SELLER_FAVOURED.value
        self.trigger_event(
            event_class, **ctx.stamp(), state=state, deadlines=[d.as_dict() for d in pending],
            resolution=resolution.as_dict(), refund=refund and refund.as_dict(),
            return_shipment=return_shipment and return_shipment.as_dict(), outcome=outcome,
            **fields,
        )  # fmt: skip

    def _start_refund(
        self, ctx: Context, trigger: str, event_class: type[events.RefundStarted]
    ) -> None:
        assert self.resolution is not None
        assert self.resolution.amount is not None  # a refund settles on an amount
        refund = self._new_refund(self.resolution.amount, ctx.at)
        pending = [deadlines.deadline(DeadlineKind.REFUND_PAYOUT, refund.expected_by)]
        self._record(ctx, trigger, event_class, deadlines=pending, refund=refund.as_dict())

    def _new_refund(self, amount: int, at: datetime) -> Refund:
        days = self.policy.payout_business_days[self.payment_method]
        return terms.new_refund(amount, self.money, at, days)

    def _turn_to(self, party: Role, at: datetime) -> list[Deadline]:
        return deadlines.turn_to(self.deadlines, party, at, self.policy.offer_response_days)

    def _review_deadlines(self, at: datetime) -> list[Deadline]:
        return deadlines.ruling(at, self.policy.ruling_sla_business_days)

    def _answers_info_request(self, actor: Actor) -> bool:
        return self.state in rules.REVIEWING and any(
            r["from"] == actor.role and r["status"] == "open" for r in self.info_requests
        )


# What each time-out does, by its trigger (the deadline table names which deadlines fire it).
LAPSES: dict[str, Callable[[Dispute, Context, str], None]] = {
    "seller_response_timeout": Dispute._seller_silent,
    "buyer_response_timeout": Dispute._buyer_silent,
    "info_request_timeout": Dispute._info_requests_lapse,
    "appeal_window_timeout": Dispute._ruling_takes_effect,
    "return_shipment_timeout": Dispute._return_not_shipped,
    "return_confirmation_timeout": Dispute._return_not_confirmed,
}
if set(LAPSES) != set(rules.TIMEOUT_TRIGGERS):
    raise LookupError("every time-out trigger of the deadline table needs one lapse here")
