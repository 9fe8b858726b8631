"""The ruling recommendation of seed 003, computed from the record for the agent.

It is shown beside the case and never applied by itself: only an agent's `rule` rules.
For an appeal it is computed again from the record, the appeal's new evidence included,
and says whether the ruling appealed differs from it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from shared.money import Money

from .values import EvidenceKind, Reason, RequestedResolution, Role

if TYPE_CHECKING:
    from .dispute import Dispute


@dataclass(frozen=True)
class Recommendation:
    decision: str  # full_refund | partial_refund | return_and_refund | none
    amount: int | None
    return_required: bool
    basis: str
    differs_from_ruling: bool | None = None  # None: nothing ruled yet, or no clear case

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _buyer_evidence(dispute: Dispute, *kinds: str) -> bool:
    return any(e["kind"] in kinds and e["added_by"] == Role.BUYER for e in dispute.evidence)


def _seller_evidence(dispute: Dispute) -> bool:
    return any(e["added_by"] == Role.SELLER for e in dispute.evidence)


def _seller_tracking(dispute: Dispute) -> bool:
    return any(
        e["kind"] == EvidenceKind.TRACKING and e["added_by"] == Role.SELLER
        for e in dispute.evidence
    )


def recommend(dispute: Dispute) -> Recommendation:
    """The policy's view of a clear case, or `none` when the record does not decide it;
    once ruled, whether the ruling on the record (the one appealed, during an appeal)
    differs from it."""
    rec = _clear_case(dispute)
    ruling = dispute.ruling
    appeal = dispute.appeal
    if appeal is not None and appeal.decided_at is None:
        rec = replace(rec, basis=f"appeal by the {appeal.by}: {rec.basis}")
    if ruling is None or rec.decision == "none":
        return rec
    differs = (ruling.decision, ruling.amount) != (rec.decision, rec.amount)
    return replace(rec, differs_from_ruling=differs)


def _clear_case(dispute: Dispute) -> Recommendation:
    policy = dispute.policy
    full = dispute.order_amount
    requested = dispute.requested_amount
    refund_kind = "full_refund" if requested >= full else "partial_refund"
    if dispute.reason == Reason.NOT_SHIPPED and not _seller_tracking(dispute):
        return Recommendation(
            "full_refund", full, False, "not shipped, and no proof of shipment: full refund"
        )
    if dispute.reason == Reason.NOT_RECEIVED and _buyer_evidence(dispute, EvidenceKind.TRACKING):
        return Recommendation(
            "full_refund", full, False, "not received, with tracking evidence: full refund"
        )
    if dispute.reason == Reason.WRONG_ITEM and _buyer_evidence(dispute, EvidenceKind.PHOTO):
        return Recommendation(
            "full_refund", full, False, "wrong item, with photos: full refund, no return"
        )
    if dispute.reason == Reason.DAMAGED and _buyer_evidence(
        dispute, EvidenceKind.PHOTO, EvidenceKind.VIDEO
    ):
        return Recommendation(
            refund_kind, requested, False, "damaged, with photo or video: refund, no return"
        )
    return_cost = Money.of_major(policy.return_shipping_estimate, dispute.currency)
    if full < return_cost.amount:
        return Recommendation(
            refund_kind,
            requested,
            False,
            f"item value below the estimated return shipping of {return_cost}: "
            "refund without return",
        )
    threshold = Money.of_major(policy.contested_return_threshold, dispute.currency)
    # A buyer who never received the item has nothing to send back.
    returnable = dispute.reason not in (Reason.NOT_RECEIVED, Reason.NOT_SHIPPED)
    if returnable and dispute.contested and _seller_evidence(dispute) and full > threshold.amount:
        return Recommendation(
            "return_and_refund",
            requested,
            True,
            f"contested by the seller with evidence, above {threshold}: return then refund",
        )
    if dispute.requested_resolution == RequestedResolution.RETURN_AND_REFUND:
        basis = "no clear-case rule applies; the buyer asked for a return and refund"
    else:
        basis = "no clear-case rule applies"
    return Recommendation("none", None, False, basis)
