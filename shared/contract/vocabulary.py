"""The public vocabularies: every closed set of names a client may send or read.

Each copies a set the dispute service defines (its value enums, its transition and
deadline tables, the permission table); `shared/` may not import the service, so
`tests/unit/test_contract_vocabulary.py` fails when the two differ.
"""

from __future__ import annotations

from typing import Literal, get_args

# Who calls the API (the deadline worker's `system` role never does).
Role = Literal["buyer", "seller", "agent", "service", "auditor"]
PartyName = Literal["buyer", "seller"]
PaymentMethod = Literal["card", "wallet", "other"]
EvidenceKind = Literal["photo", "video", "tracking", "document", "message"]
RequestedResolution = Literal["refund_only", "return_and_refund"]
OfferType = Literal["full_refund", "partial_refund", "return_and_refund", "replacement"]
Decision = Literal["full_refund", "partial_refund", "return_and_refund", "seller_favoured"]
# What the policy recommends: a decision that grants something, or nothing to recommend.
RecommendedDecision = Literal["full_refund", "partial_refund", "return_and_refund", "none"]
# What an agreed or ruled resolution leads to.
Settlement = Literal["refund", "return", "replacement", "nothing"]
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
ReasonName = Literal[
    "not_received",
    "not_as_described",
    "wrong_item",
    "damaged",
    "missing_parts",
    "late_delivery",
    "not_shipped",
]
REASONS: tuple[str, ...] = get_args(ReasonName)
# The kinds of deadline a dispute shows (`Deadline.kind`) and an agent may extend.
DeadlineKindName = Literal[
    "seller_response",
    "buyer_response",
    "info_request_buyer",
    "info_request_seller",
    "ruling",
    "appeal_window",
    "appeal_ruling",
    "return_shipment",
    "return_confirmation",
    "refund_payout",
]
DEADLINE_KINDS: tuple[str, ...] = get_args(DeadlineKindName)
InfoRequestStatus = Literal["open", "answered", "superseded", "lapsed", "closed"]
# Which aggregate an event of the feed belongs to.
Stream = Literal["dispute", "order"]
HealthStatus = Literal["ok", "unavailable"]
WebhookStatus = Literal["active", "retrying"]
DeliveryStatus = Literal["delivered", "failed"]
