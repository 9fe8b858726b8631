"""The Dispute's state as value objects: its deadlines, the standing offer, the
resolution, the refund, the return, the ruling and the appeal.

Events carry these as plain mappings (`*Data`), the shape the event feed and webhooks
publish and the shape every stored history holds; an event's `apply` turns them into
these frozen values, and each value gives its mapping back with `as_dict`. Snapshots
store them through the application's transcodings (`services.dispute.transcodings`).
Evidence, messages, information requests and a chargeback stay mappings, typed below.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, TypedDict

from .policy import Policy
from .rules import DeadlineKind

# The mappings events carry -------------------------------------------------------------


class DeadlineData(TypedDict):
    kind: str
    due_from: str
    due_at: datetime


class ResolutionData(TypedDict):
    settlement: str
    amount: int | None
    via: str


class RefundFailureData(TypedDict):
    reason: str
    at: datetime


class RefundData(TypedDict):
    amount: int
    currency: str
    started_at: datetime
    expected_by: datetime
    failures: list[RefundFailureData]
    reference: str | None
    paid_at: datetime | None


class ReturnData(TypedDict):
    address: str
    shipping_paid_by: str
    carrier: str | None
    tracking_number: str | None
    shipped_at: datetime | None
    delivered_at: datetime | None


class EvidenceData(TypedDict):
    kind: str
    uri: str
    sha256: str


class EvidenceRecord(EvidenceData):
    added_by: str
    at: datetime


class MessageRecord(TypedDict):
    from_role: str
    from_id: str
    body: str
    at: datetime


# `from` is a keyword: the functional form.
InfoRequestRecord = TypedDict(
    "InfoRequestRecord",
    {"from": str, "question": str, "due_at": datetime, "requested_at": datetime, "status": str},
)


class ChargebackRecord(TypedDict):
    reference: str
    amount: int
    at: datetime


# The values the aggregate holds ---------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    kind: DeadlineKind
    due_from: str  # a role, or "parties" (an appeal window when both may appeal)
    due_at: datetime

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deadline:
        return cls(DeadlineKind(data["kind"]), str(data["due_from"]), data["due_at"])

    def as_dict(self) -> DeadlineData:
        return {"kind": self.kind.value, "due_from": self.due_from, "due_at": self.due_at}


@dataclass(frozen=True)
class Offer:
    """The seller's standing offer."""

    type: str
    amount: int | None
    message: str
    made_at: datetime

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Offer:
        return cls(data["type"], data["amount"], data["message"], data["made_at"])

    def as_dict(self) -> dict[str, Any]:
        return {"type": self.type, "amount": self.amount, "message": self.message,
                "made_at": self.made_at}  # fmt: skip


@dataclass(frozen=True)
class Resolution:
    """What the dispute settled on, and the trigger that settled it."""

    settlement: str
    amount: int | None
    via: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Resolution:
        return cls(data["settlement"], data["amount"], data["via"])

    def as_dict(self) -> ResolutionData:
        return {"settlement": self.settlement, "amount": self.amount, "via": self.via}


@dataclass(frozen=True)
class RefundFailure:
    reason: str
    at: datetime

    def as_dict(self) -> RefundFailureData:
        return {"reason": self.reason, "at": self.at}


@dataclass(frozen=True)
class Refund:
    amount: int
    currency: str
    started_at: datetime
    expected_by: datetime
    failures: tuple[RefundFailure, ...]
    reference: str | None
    paid_at: datetime | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Refund:
        return cls(
            amount=data["amount"],
            currency=data["currency"],
            started_at=data["started_at"],
            expected_by=data["expected_by"],
            failures=tuple(RefundFailure(f["reason"], f["at"]) for f in data["failures"]),
            reference=data["reference"],
            paid_at=data["paid_at"],
        )

    def as_dict(self) -> RefundData:
        return {
            "amount": self.amount,
            "currency": self.currency,
            "started_at": self.started_at,
            "expected_by": self.expected_by,
            "failures": [f.as_dict() for f in self.failures],
            "reference": self.reference,
            "paid_at": self.paid_at,
        }

    def failed(self, reason: str, at: datetime) -> Refund:
        return replace(self, failures=(*self.failures, RefundFailure(reason, at)))

    def paid(self, reference: str, paid_at: datetime) -> Refund:
        return replace(self, reference=reference, paid_at=paid_at)


@dataclass(frozen=True)
class Return:
    """The item's way back to the seller."""

    address: str
    shipping_paid_by: str
    carrier: str | None
    tracking_number: str | None
    shipped_at: datetime | None
    delivered_at: datetime | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Return:
        return cls(
            address=data["address"],
            shipping_paid_by=data["shipping_paid_by"],
            carrier=data["carrier"],
            tracking_number=data["tracking_number"],
            shipped_at=data["shipped_at"],
            delivered_at=data["delivered_at"],
        )

    def as_dict(self) -> ReturnData:
        return {
            "address": self.address,
            "shipping_paid_by": self.shipping_paid_by,
            "carrier": self.carrier,
            "tracking_number": self.tracking_number,
            "shipped_at": self.shipped_at,
            "delivered_at": self.delivered_at,
        }

    def shipped(self, carrier: str, tracking_number: str, at: datetime) -> Return:
        return replace(self, carrier=carrier, tracking_number=tracking_number, shipped_at=at)

    def delivered(self, at: datetime) -> Return:
        return replace(self, delivered_at=at)


@dataclass(frozen=True)
class Ruling:
    """An agent's decision on the record; `final_at` is when it takes (took) effect, None
    while it is under appeal."""

    decision: str
    amount: int | None
    return_shipping_paid_by: str | None
    rationale: str
    agent_id: str
    at: datetime
    final_at: datetime | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Ruling:
        return cls(
            decision=data["decision"],
            amount=data["amount"],
            return_shipping_paid_by=data["return_shipping_paid_by"],
            rationale=data["rationale"],
            agent_id=data["agent_id"],
            at=data["at"],
            # A ruling stored before appeals existed took effect when it was made.
            final_at=data.get("final_at", data["at"]),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "amount": self.amount,
            "return_shipping_paid_by": self.return_shipping_paid_by,
            "rationale": self.rationale,
            "agent_id": self.agent_id,
            "at": self.at,
            "final_at": self.final_at,
        }

    def final(self, at: datetime | None) -> Ruling:
        return replace(self, final_at=at)


@dataclass(frozen=True)
class Appeal:
    by: str
    by_id: str
    reason: str
    at: datetime
    first_ruling: Ruling | None
    decided_at: datetime | None
    decided_by: str | None
    overturned: bool | None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Appeal:
        first = data["first_ruling"]
        return cls(
            by=data["by"],
            by_id=data["by_id"],
            reason=data["reason"],
            at=data["at"],
            first_ruling=Ruling.from_dict(first) if first else None,
            decided_at=data["decided_at"],
            decided_by=data["decided_by"],
            overturned=data["overturned"],
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "by_id": self.by_id,
            "reason": self.reason,
            "at": self.at,
            "first_ruling": {} if self.first_ruling is None else self.first_ruling.as_dict(),
            "decided_at": self.decided_at,
            "decided_by": self.decided_by,
            "overturned": self.overturned,
        }


def upcast_snapshot_v1(state: dict[str, Any]) -> None:
    """A snapshot's aggregate state as the code before these values stored it (mappings),
    turned into them in place. A snapshot taken before appeals existed has no `appeal`."""
    state["deadlines"] = [Deadline.from_dict(d) for d in state["deadlines"]]
    state["policy"] = Policy.recorded(state["policy"])
    for name, value_type in _OPTIONAL_VALUES.items():
        data = state.get(name)
        if data is not None:
            state[name] = value_type.from_dict(data)


_OPTIONAL_VALUES: dict[str, Any] = {
    "standing_offer": Offer,
    "resolution": Resolution,
    "refund": Refund,
    "return_shipment": Return,
    "ruling": Ruling,
    "appeal": Appeal,
}
