"""Settlement terms: what the buyer's request, a seller's offer or an agent's ruling
settles on, the amounts they may name, and the refund or return a settlement starts.

Pure functions of the order's amount and currency (`order`, as Money); they validate
the amounts a party or agent names, and never read a clock.
"""

from __future__ import annotations

from datetime import datetime

from shared.money import Money

from .errors import InvalidInput
from .policy import add_business_days
from .state import Offer, Refund, Return, Ruling
from .values import (
    SELLER_ERROR_REASONS,
    Decision,
    OfferType,
    RequestedResolution,
    Role,
    Settlement,
    amount_in_range,
)

Terms = tuple[str, int | None]


def of_request(requested_resolution: str, requested_amount: int) -> tuple[str, int]:
    """What the buyer's standing request settles on."""
    if requested_resolution == RequestedResolution.RETURN_AND_REFUND:
        return Settlement.RETURN.value, requested_amount
    return Settlement.REFUND.value, requested_amount


def of_offer(offer: Offer) -> Terms:
    """What a standing (already validated) offer settles on."""
    if offer.type == OfferType.REPLACEMENT:
        return Settlement.REPLACEMENT.value, None
    if offer.type == OfferType.RETURN_AND_REFUND:
        return Settlement.RETURN.value, offer.amount
    return Settlement.REFUND.value, offer.amount


def of_ruling(ruling: Ruling) -> Terms:
    """What a recorded (already validated) ruling settles on."""
    if ruling.decision == Decision.SELLER_FAVOURED:
        return Settlement.NOTHING.value, None
    if ruling.decision == Decision.RETURN_AND_REFUND:
        return Settlement.RETURN.value, ruling.amount
    return Settlement.REFUND.value, ruling.amount


def of_decision(decision: str, amount: object, order: Money) -> Terms:
    """What an agent's decision settles on, with the amount it names checked."""
    if decision == Decision.SELLER_FAVOURED:
        no_amount(amount, "a seller_favoured decision")
        return Settlement.NOTHING.value, None
    value = amount_for(decision, amount, order)
    kind = Settlement.RETURN if decision == Decision.RETURN_AND_REFUND else Settlement.REFUND
    return kind.value, value


def offer_amount(offer_type: str, amount: object, order: Money) -> int | None:
    """The amount of a seller's offer, checked against the order."""
    if offer_type == OfferType.REPLACEMENT:
        no_amount(amount, "a replacement offer")
        return None
    return amount_for(offer_type, amount, order)


def amount_for(kind: str, amount: object, order: Money) -> int:
    """The amount of a full, partial or return-and-refund offer or ruling."""
    if kind == OfferType.FULL_REFUND:
        if amount is not None and minor_units(amount, order) != order.amount:
            raise InvalidInput(
                "amount", "equals_order_amount",
                f"a full refund is the order amount, {order.amount}; omit amount",
            )  # fmt: skip
        return order.amount
    if kind == OfferType.PARTIAL_REFUND:
        if amount is None:
            raise InvalidInput("amount", "required", "a partial refund needs an amount")
        value = amount_in_range(minor_units(amount, order), order.amount)
        if value >= order.amount:
            raise InvalidInput(
                "amount", "below_order_amount",
                f"a partial refund must be less than the order amount, {order.amount}",
            )  # fmt: skip
        return value
    if amount is None:
        return order.amount
    return amount_in_range(minor_units(amount, order), order.amount)


def minor_units(amount: object, order: Money) -> object:
    """Accepts an int of minor units or Money in the order's currency."""
    if isinstance(amount, Money):
        if amount.currency != order.currency:
            raise InvalidInput(
                "amount.currency", "order_currency",
                f"amount.currency must be the order's currency, {order.currency}",
            )  # fmt: skip
        return amount.amount
    return amount


def no_amount(amount: object, what: str) -> None:
    if amount is not None:
        raise InvalidInput("amount", "not_applicable", f"{what} takes no amount")


def new_refund(amount: int, order: Money, at: datetime, payout_days: int) -> Refund:
    """A refund started at `at`, never more than the order, expected after the payout
    time of the order's payment method."""
    return Refund(
        amount=min(amount, order.amount),
        currency=order.currency,
        started_at=at,
        expected_by=add_business_days(at, payout_days),
        failures=(),
        reference=None,
        paid_at=None,
    )


def new_return(address: str, reason: str, shipping_paid_by: str | None) -> Return:
    """A return to `address`; shipping is the seller's when the item was the seller's
    error, the buyer's otherwise, unless a ruling said whose."""
    paid_by = shipping_paid_by or (Role.SELLER if reason in SELLER_ERROR_REASONS else Role.BUYER)
    return Return(
        address=address,
        shipping_paid_by=str(paid_by),
        carrier=None,
        tracking_number=None,
        shipped_at=None,
        delivered_at=None,
    )
