"""How the Dispute's value objects are stored: one `Transcoding` each, as the mapping its
`as_dict` gives (the shape its events carry), registered by `DisputeApplication`.

Only snapshots hold these values (events carry the mappings themselves). The domain does
not import this module: storing values is persistence's concern, not the domain's.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from .domain.policy import Policy
from .domain.state import Appeal, Deadline, Offer, Refund, Resolution, Return, Ruling


class DeadlineAsDict(Transcoding):
    type = Deadline
    name = "dispute_deadline"

    def encode(self, obj: Deadline) -> dict[str, Any]:
        return dict(obj.as_dict())

    def decode(self, data: dict[str, Any]) -> Deadline:
        return Deadline.from_dict(data)


class OfferAsDict(Transcoding):
    type = Offer
    name = "dispute_offer"

    def encode(self, obj: Offer) -> dict[str, Any]:
        return obj.as_dict()

    def decode(self, data: dict[str, Any]) -> Offer:
        return Offer.from_dict(data)


class ResolutionAsDict(Transcoding):
    type = Resolution
    name = "dispute_resolution"

    def encode(self, obj: Resolution) -> dict[str, Any]:
        return dict(obj.as_dict())

    def decode(self, data: dict[str, Any]) -> Resolution:
        return Resolution.from_dict(data)


class RefundAsDict(Transcoding):
    type = Refund
    name = "dispute_refund"

    def encode(self, obj: Refund) -> dict[str, Any]:
        return dict(obj.as_dict())

    def decode(self, data: dict[str, Any]) -> Refund:
        return Refund.from_dict(data)


class ReturnAsDict(Transcoding):
    type = Return
    name = "dispute_return"

    def encode(self, obj: Return) -> dict[str, Any]:
        return dict(obj.as_dict())

    def decode(self, data: dict[str, Any]) -> Return:
        return Return.from_dict(data)


class RulingAsDict(Transcoding):
    type = Ruling
    name = "dispute_ruling"

    def encode(self, obj: Ruling) -> dict[str, Any]:
        return obj.as_dict()

    def decode(self, data: dict[str, Any]) -> Ruling:
        return Ruling.from_dict(data)


class AppealAsDict(Transcoding):
    type = Appeal
    name = "dispute_appeal"

    def encode(self, obj: Appeal) -> dict[str, Any]:
        return obj.as_dict()

    def decode(self, data: dict[str, Any]) -> Appeal:
        return Appeal.from_dict(data)


class PolicyAsDict(Transcoding):
    type = Policy
    name = "dispute_policy"

    def encode(self, obj: Policy) -> dict[str, Any]:
        return obj.as_dict()

    def decode(self, data: dict[str, Any]) -> Policy:
        return Policy.recorded(data)


TRANSCODINGS: tuple[Transcoding, ...] = (
    DeadlineAsDict(),
    OfferAsDict(),
    ResolutionAsDict(),
    RefundAsDict(),
    ReturnAsDict(),
    RulingAsDict(),
    AppealAsDict(),
    PolicyAsDict(),
)


def register(transcoder: JSONTranscoder) -> None:
    for transcoding in TRANSCODINGS:
        transcoder.register(transcoding)
