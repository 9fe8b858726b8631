"""Builders that bring an order or a dispute to a given state in a few lines.

Time is explicit: a `Case` carries the moment its next command happens at, and a test
moves it with `later(...)`. Nothing here reads the wall clock.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from services.dispute.domain import Dispute, Order, OrderFacts, Policy
from services.dispute.domain.values import Actor, Context, Role
from shared.money import Money

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
ORDER_AMOUNT = 10_000
CURRENCY = "USD"
POLICY = Policy()
NO_APPEALS = Policy(appeal_window_days=0)  # a ruling takes effect at once

BUYER = Actor(Role.BUYER, "buyer-1")
SELLER = Actor(Role.SELLER, "seller-1")
AGENT = Actor(Role.AGENT, "agent-1")
AGENT_2 = Actor(Role.AGENT, "agent-2")  # four eyes: decides appeals of agent-1's rulings
SERVICE = Actor(Role.SERVICE, "payments")
AUDITOR = Actor(Role.AUDITOR, "auditor-1")
SYSTEM = Actor(Role.SYSTEM, "deadline-worker")
OTHER_BUYER = Actor(Role.BUYER, "buyer-2")
OTHER_SELLER = Actor(Role.SELLER, "seller-2")
ALL_ACTORS = [BUYER, SELLER, AGENT, AGENT_2, SERVICE, AUDITOR, SYSTEM, OTHER_BUYER,
              OTHER_SELLER]  # fmt: skip


def item(kind: str = "photo", n: int = 1) -> dict[str, str]:
    return {"kind": kind, "uri": f"https://evidence.example/{kind}/{n}", "sha256": f"{n:064x}"}


PHOTO = item("photo")
VIDEO = item("video")
TRACKING = item("tracking")
DOCUMENT = item("document")


def ctx(actor: Actor, at: datetime = T0, correlation_id: str = "req-1") -> Context:
    return Context(actor=actor, at=at, correlation_id=correlation_id)


def facts(
    *,
    amount: int = ORDER_AMOUNT,
    currency: str = CURRENCY,
    payment_method: str = "card",
    placed_at: datetime = T0 - timedelta(days=10),
    shipped_at: datetime | None = None,
    tracking: dict[str, Any] | None = None,
    delivered_at: datetime | None = None,
    buyer_id: str = BUYER.id,
    seller_id: str = SELLER.id,
) -> OrderFacts:
    return OrderFacts.parse(
        buyer_id=buyer_id,
        seller_id=seller_id,
        amount=Money(amount, currency),
        payment_method=payment_method,
        placed_at=placed_at,
        shipped_at=shipped_at,
        tracking=tracking,
        delivered_at=delivered_at,
    )


def make_order(
    at: datetime = T0, ref: str = "order-1", policy: Policy = POLICY, **kwargs: Any
) -> Order:
    return Order.register(ctx(SERVICE, at), ref, facts(**kwargs), policy)


@dataclass
class Case:
    """A dispute, its order, and the moment of the next command."""

    dispute: Dispute
    order: Order
    at: datetime
    events: list[Any] = field(default_factory=list)

    def by(self, actor: Actor, correlation_id: str = "req-1") -> Context:
        return ctx(actor, self.at, correlation_id)

    def later(self, **delta: float) -> Case:
        self.at += timedelta(**delta)
        return self

    @property
    def state(self) -> str:
        return self.dispute.state


def open_case(
    *,
    reason: str = "damaged",
    resolution: str = "refund_only",
    amount: int = ORDER_AMOUNT,
    order_amount: int = ORDER_AMOUNT,
    evidence: Iterable[Mapping[str, Any]] = (PHOTO,),
    policy: Policy = POLICY,
    at: datetime = T0,
    **order_kwargs: Any,
) -> Case:
    """A dispute awaiting the seller's answer."""
    order = make_order(at=at, policy=policy, amount=order_amount, **order_kwargs)
    dispute = Dispute.open(
        ctx(BUYER, at),
        order,
        reason=reason,
        requested_resolution=resolution,
        amount=Money(amount, order.currency),
        description="The item arrived broken",
        evidence=list(evidence),
        policy=policy,
    )
    return Case(dispute, order, at)


def buyers_turn(case: Case | None = None, **kwargs: Any) -> Case:
    """Negotiating: the seller rejected, the buyer answers."""
    case = case or open_case(**kwargs)
    case.dispute.reject(case.later(hours=1).by(SELLER), reason="Item was fine when shipped")
    return case


def with_offer(offer_type: str = "partial_refund", amount: object = 4_000, **kw: Any) -> Case:
    """Negotiating: the seller offered, the buyer answers."""
    case = open_case(**kw)
    case.dispute.offer(case.later(hours=1).by(SELLER), type=offer_type, amount=amount)
    return case


def sellers_turn(amount: int = 8_000, resolution: str = "refund_only", **kwargs: Any) -> Case:
    """Negotiating: the buyer countered, the seller answers."""
    case = buyers_turn(**kwargs)
    case.dispute.revise(
        case.later(hours=1).by(BUYER), requested_resolution=resolution, amount=amount
    )
    return case


def under_review(**kwargs: Any) -> Case:
    case = buyers_turn(**kwargs)
    case.dispute.escalate(case.later(hours=1).by(BUYER), reason="The seller will not refund")
    return case


def offer_in_review(
    offer_type: str = "partial_refund", amount: int | None = 4_000, **kwargs: Any
) -> Case:
    """Under review, with an offer the seller made during the review."""
    case = under_review(**kwargs)
    case.dispute.offer(case.later(hours=1).by(SELLER), type=offer_type, amount=amount)
    return case


def ruled(decision: str = "full_refund", amount: int | None = None, **kwargs: Any) -> Case:
    """Ruled by agent-1, within the appeal window (default policy: 3 days)."""
    case = under_review(**kwargs)
    case.dispute.rule(
        case.later(hours=1).by(AGENT), decision=decision, amount=amount, rationale="Seen it"
    )
    return case


def under_appeal(
    decision: str = "full_refund",
    amount: int | None = None,
    appellant: Actor = SELLER,
    **kwargs: Any,
) -> Case:
    """The party the ruling went against appealed it with new evidence."""
    case = ruled(decision, amount, **kwargs)
    case.dispute.file_appeal(
        case.later(hours=1).by(appellant), reason="New photos", evidence=[item("photo", 7)]
    )
    return case


def not_shipped(**kwargs: Any) -> Case:
    """A request to cancel an order that has not shipped: full refund, no evidence."""
    return open_case(reason="not_shipped", evidence=(), **kwargs)


def awaiting_return(reason: str = "damaged", amount: int = ORDER_AMOUNT, **kw: Any) -> Case:
    case = open_case(reason=reason, resolution="return_and_refund", amount=amount, **kw)
    case.dispute.accept(case.later(hours=1).by(SELLER))
    return case


def return_in_transit(**kwargs: Any) -> Case:
    case = awaiting_return(**kwargs)
    case.dispute.ship_return(case.later(days=1).by(BUYER), carrier="DHL", tracking_number="JD1")
    return case


def return_delivered(**kwargs: Any) -> Case:
    case = return_in_transit(**kwargs)
    case.dispute.return_delivered(case.later(days=2).by(SERVICE), delivered_at=case.at)
    return case


def refund_pending(amount: int = ORDER_AMOUNT, **kwargs: Any) -> Case:
    case = open_case(amount=amount, **kwargs)
    case.dispute.accept(case.later(hours=1).by(SELLER))
    return case


def closed(**kwargs: Any) -> Case:
    case = open_case(**kwargs)
    case.dispute.withdraw(case.later(hours=1).by(BUYER), reason="Sorted it out myself")
    return case


# One builder per state of the table, for tests that sweep every state.
BUILDERS = {
    "awaiting_seller": open_case,
    "negotiating": buyers_turn,
    "under_review": under_review,
    "ruled": ruled,
    "under_appeal": under_appeal,
    "awaiting_return": awaiting_return,
    "return_in_transit": return_in_transit,
    "refund_pending": refund_pending,
    "closed": closed,
}


def snapshot(dispute: Dispute) -> dict[str, Any]:
    """A deep copy of the aggregate's state, without its pending events."""
    return copy.deepcopy({k: v for k, v in vars(dispute).items() if k != "_pending_events"})


def replay(events: Iterable[Any]) -> Any:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate
