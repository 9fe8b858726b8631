"""Value types of the dispute domain and the checks that turn raw values into them.

Aggregates keep plain JSON-friendly values (str, int, datetime, dict, list) in their
state so that snapshots round-trip exactly; these types validate on the way in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .errors import InvalidInput, ReasonNotCovered


class Role(StrEnum):
    BUYER = "buyer"
    SELLER = "seller"
    AGENT = "agent"
    SERVICE = "service"
    AUDITOR = "auditor"
    SYSTEM = "system"


PARTY_ROLES = frozenset({Role.BUYER, Role.SELLER})


class Party(StrEnum):
    BUYER = "buyer"
    SELLER = "seller"


class Reason(StrEnum):
    NOT_RECEIVED = "not_received"
    NOT_AS_DESCRIBED = "not_as_described"
    WRONG_ITEM = "wrong_item"
    DAMAGED = "damaged"
    MISSING_PARTS = "missing_parts"
    LATE_DELIVERY = "late_delivery"
    NOT_SHIPPED = "not_shipped"  # cancelling before shipment (seeds 001, 004)


# Reasons about the item's quality need a photo or video at opening (seed 003), and are
# the seller's error, so the seller pays return shipping.
QUALITY_REASONS = frozenset(
    {Reason.NOT_AS_DESCRIBED, Reason.WRONG_ITEM, Reason.DAMAGED, Reason.MISSING_PARTS}
)
SELLER_ERROR_REASONS = QUALITY_REASONS
NOT_COVERED_REASONS = frozenset({"changed_my_mind", "change_of_mind", "changed_mind"})


class RequestedResolution(StrEnum):
    REFUND_ONLY = "refund_only"
    RETURN_AND_REFUND = "return_and_refund"


class OfferType(StrEnum):
    FULL_REFUND = "full_refund"
    PARTIAL_REFUND = "partial_refund"
    RETURN_AND_REFUND = "return_and_refund"
    REPLACEMENT = "replacement"


class Decision(StrEnum):
    FULL_REFUND = "full_refund"
    PARTIAL_REFUND = "partial_refund"
    RETURN_AND_REFUND = "return_and_refund"
    SELLER_FAVOURED = "seller_favoured"


class PaymentMethod(StrEnum):
    CARD = "card"
    WALLET = "wallet"
    OTHER = "other"


class EvidenceKind(StrEnum):
    PHOTO = "photo"
    VIDEO = "video"
    TRACKING = "tracking"
    DOCUMENT = "document"
    MESSAGE = "message"


class Outcome(StrEnum):
    REFUNDED_FULL = "refunded_full"
    REFUNDED_PARTIAL = "refunded_partial"
    REPLACEMENT = "replacement"
    SELLER_FAVOURED = "seller_favoured"
    WITHDRAWN = "withdrawn"
    BUYER_LAPSED = "buyer_lapsed"
    RETURN_NOT_SHIPPED = "return_not_shipped"
    CHARGEBACK = "chargeback"


class Settlement(StrEnum):
    """What an agreed or ruled resolution leads to; the transition table picks the state."""

    REFUND = "refund"  # refund with no return
    RETURN = "return"  # return, then refund
    REPLACEMENT = "replacement"
    NOTHING = "nothing"  # the ruling grants nothing


@dataclass(frozen=True, slots=True)
class Actor:
    role: Role
    id: str

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id.strip():
            raise InvalidInput("actor.id", "required", "the actor's principal id is required")


@dataclass(frozen=True, slots=True)
class Context:
    """Who is acting, when (from the injected clock), and on behalf of which request."""

    actor: Actor
    at: datetime
    correlation_id: str
    # The W3C traceparent of the request (None: no trace, e.g. a time-out).
    traceparent: str | None = None

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError("Context.at must be timezone-aware")

    def stamp(self) -> dict[str, Any]:
        """The fields every event records about its cause."""
        return {
            "timestamp": self.at.astimezone(UTC),
            "actor_role": str(self.actor.role),
            "actor_id": self.actor.id,
            "correlation_id": self.correlation_id,
            "traceparent": self.traceparent,
        }


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:\S+$")
MAX_TEXT = 5000


def enum_value(enum: type[StrEnum], value: object, field: str) -> str:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return str(enum(value))
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise InvalidInput(field, "one_of", f"{field} must be one of: {allowed}") from None


def parse_reason(value: object) -> str:
    if isinstance(value, str) and value in NOT_COVERED_REASONS:
        raise ReasonNotCovered(
            "reason",
            "not_covered",
            "changing your mind is not covered by buyer protection; ask the seller "
            "for a voluntary return instead",
        )
    return enum_value(Reason, value, "reason")


def text(value: object, field: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(field, "required", f"{field} must be a non-empty text")
    if len(value) > limit:
        raise InvalidInput(field, "max_length", f"{field} must be at most {limit} characters")
    return value


def evidence_items(
    items: Iterable[Mapping[str, Any]], field: str = "evidence"
) -> list[dict[str, Any]]:
    """Validates evidence references; the service stores references, never bytes."""
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        where = f"{field}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidInput(where, "object", f"{where} must be an object")
        kind = enum_value(EvidenceKind, item.get("kind"), f"{where}.kind")
        uri = item.get("uri")
        if not isinstance(uri, str) or not _URI.match(uri) or len(uri) > 2048:
            raise InvalidInput(f"{where}.uri", "uri", f"{where}.uri must be an absolute URI")
        digest = item.get("sha256")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise InvalidInput(
                f"{where}.sha256",
                "sha256_hex",
                f"{where}.sha256 must be the 64 lower-case hex digits of the content's SHA-256",
            )
        out.append({"kind": kind, "uri": uri, "sha256": digest})
    return out


def amount_in_range(amount: object, order_amount: int, field: str = "amount") -> int:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidInput(field, "integer_minor_units", f"{field} must be an integer")
    if amount < 1:
        raise InvalidInput(field, "minimum", f"{field} must be at least 1 minor unit")
    if amount > order_amount:
        raise InvalidInput(
            field,
            "not_above_order_amount",
            f"{field} must not exceed the order amount of {order_amount} minor units",
        )
    return amount


def aware(value: object, field: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput(field, "timezone", f"{field} must be a date-time with a time zone")
    return value.astimezone(UTC)
