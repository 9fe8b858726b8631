"""Opening a dispute: who may open one about which order, and what the request must say.

`check` refuses what may not be opened and turns the raw request into the values the
Opened event records; `Dispute.open` records it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared import permissions
from shared.money import Money

from .errors import (
    DisputeAlreadyExists,
    InvalidInput,
    OrderAlreadyShipped,
    OrderChargedBack,
    OrderNotFound,
    ProtectionEnded,
    RoleNotPermitted,
)
from .order import Order
from .policy import Policy, days_after
from .values import (
    QUALITY_REASONS,
    Context,
    EvidenceKind,
    Reason,
    RequestedResolution,
    amount_in_range,
    enum_value,
    evidence_items,
    parse_reason,
    text,
)


@dataclass(frozen=True)
class Opening:
    """A request to open a dispute, checked."""

    reason: str
    requested_resolution: str
    amount: int
    description: str
    evidence: list[dict[str, Any]]
    seller_response_due: datetime


def check(
    ctx: Context,
    order: Order,
    *,
    reason: object,
    requested_resolution: object,
    amount: Money,
    description: object,
    evidence: Iterable[Mapping[str, Any]],
    policy: Policy,
) -> Opening:
    """The buyer of an order under protection, with no dispute or chargeback on it yet,
    asks for a covered reason, in the order's currency, with the evidence it needs."""
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
        _check_cancellation(order, resolution, requested)
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
    return Opening(reason_value, resolution, requested, description_text, items, due)


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
