"""The Order aggregate: the facts a dispute is about, and its buyer-protection window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from shared import permissions
from shared.money import Money

from .errors import (
    ChargebackExists,
    ExtensionRefused,
    InvalidInput,
    OrderFactsConflict,
    RoleNotPermitted,
)
from .policy import Policy
from .values import Actor, Context, PaymentMethod, amount_in_range, aware, enum_value, text

ID_NAMESPACE = uuid5(NAMESPACE_URL, "https://disputes.internal/ids")
FUTURE_TOLERANCE = timedelta(minutes=5)  # clock skew allowed on reported facts


def order_id(order_ref: str) -> UUID:
    """Deterministic aggregate id of an order, from the marketplace's order id."""
    return uuid5(ID_NAMESPACE, f"order:{order_ref}")


@dataclass(frozen=True)
class OrderFacts:
    """What the orders and logistics services tell us about an order (validated)."""

    buyer_id: str
    seller_id: str
    amount: Money
    payment_method: str
    placed_at: datetime
    shipped_at: datetime | None = None
    tracking: dict[str, str] | None = None
    delivered_at: datetime | None = None

    @classmethod
    def parse(
        cls,
        *,
        buyer_id: object,
        seller_id: object,
        amount: Money,
        payment_method: object,
        placed_at: object,
        shipped_at: object = None,
        tracking: dict[str, Any] | None = None,
        delivered_at: object = None,
    ) -> OrderFacts:
        if amount.amount < 1:
            raise InvalidInput("amount.amount", "minimum", "the order amount must be at least 1")
        placed = aware(placed_at, "placed_at")
        shipped = aware(shipped_at, "shipped_at") if shipped_at is not None else None
        delivered = aware(delivered_at, "delivered_at") if delivered_at is not None else None
        if shipped and shipped < placed:
            raise InvalidInput(
                "shipped_at", "not_before_placed_at", "shipped_at is before placed_at"
            )
        if delivered and delivered < (shipped or placed):
            raise InvalidInput(
                "delivered_at", "not_before_shipped_at", "delivered_at is before the order shipped"
            )
        track = None
        if tracking is not None:
            track = {
                "carrier": text(tracking.get("carrier"), "tracking.carrier", limit=100),
                "number": text(tracking.get("number"), "tracking.number", limit=100),
            }
        return cls(
            buyer_id=text(buyer_id, "buyer_id", limit=200),
            seller_id=text(seller_id, "seller_id", limit=200),
            amount=amount,
            payment_method=enum_value(PaymentMethod, payment_method, "payment_method"),
            placed_at=placed,
            shipped_at=shipped,
            tracking=track,
            delivered_at=delivered,
        )


def _require(actor: Actor, command: str, action: str) -> None:
    """Refuses a command the permission table does not give the actor's role."""
    if not permissions.may_command(actor.role, command):
        raise RoleNotPermitted(action, actor.role)


def _not_in_future(value: datetime | None, field: str, now: datetime) -> None:
    if value is not None and value > now + FUTURE_TOLERANCE:
        raise InvalidInput(field, "not_in_future", f"{field} is in the future")


class Order(Aggregate):
    if TYPE_CHECKING:  # attributes set by the events; not dataclass fields
        order_ref: str
        buyer_id: str
        seller_id: str
        amount: int
        currency: str
        payment_method: str
        placed_at: datetime
        shipped_at: datetime | None
        tracking: dict[str, str] | None
        delivered_at: datetime | None
        protection: dict[str, int]
        extensions: list[dict[str, Any]]
        dispute_id: str | None
        chargebacks: list[dict[str, Any]]

    class Event(Aggregate.Event):
        actor_role: str
        actor_id: str
        correlation_id: str
        # Events stored before traces were recorded have none: read it with getattr.
        traceparent: str | None

    class Registered(Event, Aggregate.Created):
        order_ref: str
        buyer_id: str
        seller_id: str
        amount: int
        currency: str
        payment_method: str
        placed_at: datetime
        protection: dict[str, int]

        def apply(self, order: Order) -> None:
            order.order_ref = self.order_ref
            order.buyer_id = self.buyer_id
            order.seller_id = self.seller_id
            order.amount = self.amount
            order.currency = self.currency
            order.payment_method = self.payment_method
            order.placed_at = self.placed_at
            order.protection = dict(self.protection)
            order.shipped_at = None
            order.tracking = None
            order.delivered_at = None
            order.extensions = []
            order.dispute_id = None
            order.chargebacks = []

    class ShippingRecorded(Event):
        shipped_at: datetime | None
        tracking: dict[str, str] | None

        def apply(self, order: Order) -> None:
            if self.shipped_at is not None:
                order.shipped_at = self.shipped_at
            if self.tracking is not None:
                order.tracking = dict(self.tracking)

    class DeliveryRecorded(Event):
        delivered_at: datetime

        def apply(self, order: Order) -> None:
            order.delivered_at = self.delivered_at

    class ProtectionExtended(Event):
        days: int
        reason: str

        def apply(self, order: Order) -> None:
            order.extensions = [
                *order.extensions,
                {"days": self.days, "reason": self.reason, "by": self.actor_id,
                 "at": self.timestamp},
            ]  # fmt: skip

    class DisputeOpened(Event):
        dispute_id: str

        def apply(self, order: Order) -> None:
            order.dispute_id = self.dispute_id

    class ChargebackRecorded(Event):
        """The payments service reported a chargeback (seeds 002, 003). `double_recovery`:
        a refund was already paid for the order's dispute, so the buyer would be paid
        twice; `amount_at_risk` is the part of the chargeback that refund already covered."""

        reference: str
        amount: int
        reason: str
        opened_at: datetime
        dispute_id: str | None
        double_recovery: bool
        amount_at_risk: int | None

        def apply(self, order: Order) -> None:
            order.chargebacks = [
                *order.chargebacks,
                {
                    "reference": self.reference,
                    "amount": self.amount,
                    "reason": self.reason,
                    "opened_at": self.opened_at,
                    "recorded_at": self.timestamp,
                    "dispute_id": self.dispute_id,
                    "double_recovery": self.double_recovery,
                    "amount_at_risk": self.amount_at_risk,
                },
            ]

    @staticmethod
    def create_id(order_ref: str) -> UUID:
        return order_id(order_ref)

    # Commands

    @classmethod
    def register(cls, ctx: Context, order_ref: str, facts: OrderFacts, policy: Policy) -> Order:
        _require(ctx.actor, "put_order", "register orders")
        text(order_ref, "order_id", limit=200)
        for field, value in (
            ("placed_at", facts.placed_at),
            ("shipped_at", facts.shipped_at),
            ("delivered_at", facts.delivered_at),
        ):
            _not_in_future(value, field, ctx.at)
        order = cls._create(
            cls.Registered,
            **ctx.stamp(),
            order_ref=order_ref,
            buyer_id=facts.buyer_id,
            seller_id=facts.seller_id,
            amount=facts.amount.amount,
            currency=facts.amount.currency,
            payment_method=facts.payment_method,
            placed_at=facts.placed_at,
            protection={
                "after_delivery_days": policy.protection_after_delivery_days,
                "delivery_deadline_days": policy.delivery_deadline_days,
                "cap_days": policy.protection_cap_days,
            },
        )
        order._record_shipping(ctx, facts)
        return order

    def record_facts(self, ctx: Context, facts: OrderFacts) -> bool:
        """Adds shipping and delivery facts; True when anything new was recorded.

        The registration facts must match what is recorded; a recorded shipping or
        delivery fact is never changed.
        """
        _require(ctx.actor, "put_order", "update orders")
        for field, recorded, given in (
            ("buyer_id", self.buyer_id, facts.buyer_id),
            ("seller_id", self.seller_id, facts.seller_id),
            ("amount", self.money, facts.amount),
            ("payment_method", self.payment_method, facts.payment_method),
            ("placed_at", self.placed_at, facts.placed_at),
        ):
            if recorded != given:
                raise OrderFactsConflict(field, str(recorded), str(given))
        for field, recorded_value, given_value in (
            ("shipped_at", self.shipped_at, facts.shipped_at),
            ("tracking", self.tracking, facts.tracking),
            ("delivered_at", self.delivered_at, facts.delivered_at),
        ):
            if recorded_value is not None and given_value not in (None, recorded_value):
                raise OrderFactsConflict(field, str(recorded_value), str(given_value))
        if facts.delivered_at is not None:
            shipped = facts.shipped_at or self.shipped_at
            if shipped is not None and facts.delivered_at < shipped:
                raise InvalidInput(
                    "delivered_at",
                    "not_before_shipped_at",
                    "delivered_at is before the order shipped",
                )
        delivered = self.delivered_at
        if facts.shipped_at is not None and delivered is not None and facts.shipped_at > delivered:
            raise InvalidInput(
                "shipped_at", "not_after_delivered_at", "shipped_at is after the delivery"
            )
        _not_in_future(facts.shipped_at, "shipped_at", ctx.at)
        _not_in_future(facts.delivered_at, "delivered_at", ctx.at)
        version = self.version
        self._record_shipping(ctx, facts)
        return self.version != version

    def _record_shipping(self, ctx: Context, facts: OrderFacts) -> None:
        new_shipped = facts.shipped_at if self.shipped_at is None else None
        new_tracking = facts.tracking if self.tracking is None else None
        if new_shipped is not None or new_tracking is not None:
            self.trigger_event(
                self.ShippingRecorded, **ctx.stamp(), shipped_at=new_shipped, tracking=new_tracking
            )
        if facts.delivered_at is not None and self.delivered_at is None:
            self.trigger_event(
                self.DeliveryRecorded, **ctx.stamp(), delivered_at=facts.delivered_at
            )

    def extend_protection(self, ctx: Context, days: object, reason: object) -> None:
        """The seller grants more time before a dispute exists (seed 002)."""
        _require(ctx.actor, "extend_protection", "extend buyer protection")
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise InvalidInput("days", "minimum", "days must be a whole number of at least 1")
        reason_text = text(reason, "reason", limit=1000)
        if self.dispute_id is not None:
            raise ExtensionRefused(
                "protection can only be extended before a dispute is opened; "
                f"order {self.order_ref} has dispute {self.dispute_id}"
            )
        if ctx.at > self.protection_ends_at:
            raise ExtensionRefused(
                f"protection for order {self.order_ref} already ended at "
                f"{self.protection_ends_at.isoformat()}"
            )
        room = (self.protection_cap - self.delivery_deadline).days
        if days > room:
            raise InvalidInput(
                "days",
                "within_protection_cap",
                f"protection can be extended by at most {max(room, 0)} more days "
                f"(the cap is {self.protection['cap_days']} days after the order was placed)",
            )
        self.trigger_event(self.ProtectionExtended, **ctx.stamp(), days=days, reason=reason_text)

    def record_dispute(self, ctx: Context, dispute_id: str) -> None:
        self.trigger_event(self.DisputeOpened, **ctx.stamp(), dispute_id=dispute_id)

    def record_chargeback(
        self,
        ctx: Context,
        *,
        reference: object,
        amount: Money,
        reason: object,
        opened_at: object,
        refund_paid: int | None,
    ) -> dict[str, Any]:
        """Records a chargeback the payments service reports; returns it as recorded.

        `refund_paid`: the refund already paid for this order's dispute, if any (then the
        chargeback is a double recovery). Closing an open dispute is the dispute's part.
        """
        _require(ctx.actor, "report_chargeback", "report chargebacks")
        reference_text = text(reference, "reference", limit=200)
        reason_text = text(reason, "reason", limit=1000)
        if amount.currency != self.currency:
            raise InvalidInput(
                "amount.currency",
                "order_currency",
                f"amount.currency must be the order's currency, {self.currency}",
            )
        value = amount_in_range(amount.amount, self.amount, "amount.amount")
        opened = aware(opened_at, "opened_at")
        _not_in_future(opened, "opened_at", ctx.at)
        if opened < self.placed_at:
            raise InvalidInput(
                "opened_at", "not_before_placed_at", "opened_at is before the order was placed"
            )
        if any(c["reference"] == reference_text for c in self.chargebacks):
            raise ChargebackExists(self.order_ref, reference_text)
        double = refund_paid is not None
        self.trigger_event(
            self.ChargebackRecorded,
            **ctx.stamp(),
            reference=reference_text,
            amount=value,
            reason=reason_text,
            opened_at=opened,
            dispute_id=self.dispute_id,
            double_recovery=double,
            amount_at_risk=min(value, refund_paid) if refund_paid is not None else None,
        )
        return dict(self.chargebacks[-1])

    # Queries

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def delivery_deadline(self) -> datetime:
        extra = sum(e["days"] for e in self.extensions)
        return self.placed_at + timedelta(days=self.protection["delivery_deadline_days"] + extra)

    @property
    def protection_cap(self) -> datetime:
        return self.placed_at + timedelta(days=self.protection["cap_days"])

    @property
    def protection_ends_at(self) -> datetime:
        """The earlier of 15 days after delivery and the (extended) delivery deadline,
        never later than the cap after placing the order (defaults; seeds 001, 004)."""
        end = min(self.delivery_deadline, self.protection_cap)
        if self.delivered_at is not None:
            end = min(
                end, self.delivered_at + timedelta(days=self.protection["after_delivery_days"])
            )
        return end

    def visible_to(self, actor: Actor) -> bool:
        return permissions.may_see(actor.role, actor.id, self.buyer_id, self.seller_id)
