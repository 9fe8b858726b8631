"""The commands of the dispute's actions: one frozen dataclass per action of the table.

A command is an order (`MakeOffer`, `Rule`), not a fact: it says what a caller asks for,
in the domain's own types (Money, the enums of `values`, aware datetimes, evidence
references), and names the API action and the transition table's trigger it pulls.
`handlers.HANDLERS` maps each command type to the function that applies it to a Dispute.

Commands are plain data: the Dispute still checks every rule and every value when a
command is applied, so a command built by hand is held to the same rules as one built
from an HTTP body. Field names are the HTTP body's field names (`from_` for `from`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from shared.money import Money

from .values import Decision, EvidenceKind, OfferType, Party, RequestedResolution


@dataclass(frozen=True, slots=True)
class EvidenceItem:
    """A reference to evidence held elsewhere: its kind, where it is, its SHA-256."""

    kind: EvidenceKind
    uri: str
    sha256: str

    def as_dict(self) -> dict[str, Any]:
        """As the Dispute's events record it."""
        return {"kind": str(self.kind), "uri": self.uri, "sha256": self.sha256}


Evidence = tuple[EvidenceItem, ...]


def evidence_mappings(
    items: Iterable[EvidenceItem | Mapping[str, Any]],
) -> list[Mapping[str, Any]]:
    """Evidence as `values.evidence_items` checks it: a command's items, or the mappings a
    direct caller of the Dispute gives."""
    return [item.as_dict() if isinstance(item, EvidenceItem) else item for item in items]


@dataclass(frozen=True, kw_only=True)
class Command:
    """An action on one dispute. Subclasses name their action (`accept-offer`); the
    trigger is the transition table's name for it (`accept_offer`)."""

    action: ClassVar[str]
    trigger: ClassVar[str]

    def __init_subclass__(cls, *, action: str, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.action = action
        cls.trigger = action.replace("-", "_")


# The seller's answers --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Accept(Command, action="accept"):
    """The seller accepts the buyer's standing request."""


@dataclass(frozen=True, kw_only=True)
class Reject(Command, action="reject"):
    reason: str
    evidence: Evidence = ()


@dataclass(frozen=True, kw_only=True)
class MakeOffer(Command, action="offer"):
    type: OfferType
    amount: Money | None = None
    message: str | None = None


# The buyer's answers ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AcceptOffer(Command, action="accept-offer"):
    """The buyer accepts the seller's standing offer."""


@dataclass(frozen=True, kw_only=True)
class Revise(Command, action="revise"):
    """The buyer counters with a new request."""

    requested_resolution: RequestedResolution
    amount: Money
    message: str | None = None


@dataclass(frozen=True, kw_only=True)
class Escalate(Command, action="escalate"):
    reason: str


@dataclass(frozen=True, kw_only=True)
class Withdraw(Command, action="withdraw"):
    reason: str


# Either party, or an agent ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AddEvidence(Command, action="evidence"):
    evidence: Evidence


@dataclass(frozen=True, kw_only=True)
class PostMessage(Command, action="messages"):
    body: str


# Review and appeal -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class RequestInfo(Command, action="request-info"):
    from_: Party
    question: str
    due_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class Rule(Command, action="rule"):
    decision: Decision
    amount: Money | None = None
    return_shipping_paid_by: Party | None = None
    rationale: str


@dataclass(frozen=True, kw_only=True)
class Appeal(Command, action="appeal"):
    """The party the ruling went against appeals it, once, with new evidence."""

    reason: str
    evidence: Evidence


@dataclass(frozen=True, kw_only=True)
class ExtendDeadline(Command, action="extend-deadline"):
    # The kind of a pending deadline; which kinds are pending is the dispute's to say.
    deadline: str
    until: datetime
    reason: str


# The return and the refund ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ShipReturn(Command, action="ship-return"):
    carrier: str
    tracking_number: str


@dataclass(frozen=True, kw_only=True)
class ReturnDelivered(Command, action="return-delivered"):
    delivered_at: datetime


@dataclass(frozen=True, kw_only=True)
class ConfirmReturn(Command, action="confirm-return"):
    """The seller confirms the returned item arrived as expected."""


@dataclass(frozen=True, kw_only=True)
class ContestReturn(Command, action="contest-return"):
    reason: str
    evidence: Evidence = ()


@dataclass(frozen=True, kw_only=True)
class RefundPaid(Command, action="refund-paid"):
    reference: str
    paid_at: datetime


@dataclass(frozen=True, kw_only=True)
class RefundFailed(Command, action="refund-failed"):
    reason: str
