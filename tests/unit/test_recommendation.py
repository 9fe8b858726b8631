"""The ruling recommendation of seed 003: computed from the record, never applied."""

from __future__ import annotations

import pytest

from services.dispute.domain import Policy, recommend, rules

from .helpers import (
    PHOTO,
    SELLER,
    TRACKING,
    VIDEO,
    Case,
    buyers_turn,
    open_case,
    under_review,
)


def contested(amount: int = 10_000) -> Case:
    case = open_case(reason="not_as_described", amount=amount, order_amount=amount)
    case.dispute.reject(case.later(hours=1).by(SELLER), reason="As listed", evidence=[PHOTO])
    return case


class TestClearCases:
    def test_not_received_with_tracking_is_a_full_refund_without_return(self) -> None:
        case = open_case(reason="not_received", amount=4_000, evidence=[TRACKING])
        rec = recommend(case.dispute)
        assert (rec.decision, rec.amount, rec.return_required) == ("full_refund", 10_000, False)

    def test_not_received_without_tracking_is_not_a_clear_case(self) -> None:
        assert recommend(open_case(reason="not_received", evidence=[]).dispute).decision == "none"

    def test_wrong_item_with_photos_is_a_full_refund_without_return(self) -> None:
        rec = recommend(open_case(reason="wrong_item", evidence=[PHOTO]).dispute)
        assert (rec.decision, rec.return_required) == ("full_refund", False)

    def test_wrong_item_with_only_a_video_is_not_a_clear_case(self) -> None:
        rec = recommend(open_case(reason="wrong_item", evidence=[VIDEO]).dispute)
        assert rec.decision == "none"

    @pytest.mark.parametrize(
        ("amount", "decision"), [(10_000, "full_refund"), (6_000, "partial_refund")]
    )
    def test_damaged_with_photo_or_video_refunds_what_was_asked_without_return(
        self, amount: int, decision: str
    ) -> None:  # fmt: skip
        rec = recommend(open_case(reason="damaged", amount=amount, evidence=[VIDEO]).dispute)
        assert (rec.decision, rec.amount, rec.return_required) == (decision, amount, False)


class TestThresholds:
    def test_an_item_cheaper_than_return_shipping_is_refunded_without_return(self) -> None:
        case = open_case(reason="late_delivery", resolution="return_and_refund", evidence=[],
                         amount=2_999, order_amount=2_999)  # fmt: skip
        rec = recommend(case.dispute)
        assert (rec.decision, rec.return_required) == ("full_refund", False)
        assert "30.00 USD" in rec.basis

    def test_a_contested_claim_above_the_threshold_is_returned_then_refunded(self) -> None:
        rec = recommend(contested().dispute)
        assert (rec.decision, rec.return_required) == ("return_and_refund", True)

    def test_an_item_never_received_is_never_to_be_returned(self) -> None:
        case = open_case(reason="not_received", amount=10_000, order_amount=10_000, evidence=[])
        case.dispute.reject(case.later(hours=1).by(SELLER), reason="Delivered", evidence=[TRACKING])
        rec = recommend(case.dispute)
        assert case.dispute.contested
        assert (rec.decision, rec.return_required) == ("none", False)

    def test_a_contested_claim_at_the_threshold_is_not_a_clear_case(self) -> None:
        assert recommend(contested(5_000).dispute).decision == "none"
        assert recommend(contested(5_001).dispute).decision == "return_and_refund"

    def test_thresholds_come_from_the_policy_the_dispute_was_opened_under(self) -> None:
        policy = Policy(contested_return_threshold=200)
        case = open_case(reason="not_as_described", policy=policy)
        case.dispute.reject(case.later(hours=1).by(SELLER), reason="As listed", evidence=[PHOTO])
        assert recommend(case.dispute).decision == "none"

    def test_a_rejection_without_evidence_is_not_a_contest(self) -> None:
        case = buyers_turn(reason="not_as_described")
        assert not case.dispute.contested
        assert recommend(case.dispute).decision == "none"


def test_a_recommendation_is_never_applied_by_itself() -> None:
    case = under_review(reason="wrong_item")
    version = case.dispute.version
    assert recommend(case.dispute).decision == "full_refund"
    assert (case.state, case.dispute.version) == (rules.UNDER_REVIEW, version)
    assert recommend(case.dispute).to_dict()["return_required"] is False
