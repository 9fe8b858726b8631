"""The seller's answer and the negotiation between the parties."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.dispute.domain import rules
from services.dispute.domain.errors import ActionNotAllowed, InvalidInput
from services.dispute.domain.values import Outcome
from shared.money import Money

from .helpers import (
    BUYER,
    ORDER_AMOUNT,
    PHOTO,
    SELLER,
    SYSTEM,
    buyers_turn,
    open_case,
    sellers_turn,
    snapshot,
    under_review,
    with_offer,
)


class TestSellersFirstAnswer:
    def test_seller_silence_grants_the_buyers_request_in_full(self) -> None:
        case = open_case(amount=7_000)
        case.dispute.fire_timeout(case.later(days=5).by(SYSTEM), "seller_response_timeout")
        assert case.state == rules.REFUND_PENDING
        assert case.dispute.resolution is not None
        assert case.dispute.resolution.as_dict() == {
            "settlement": "refund", "amount": 7_000, "via": "seller_response_timeout",
        }  # fmt: skip
        assert case.dispute.refund is not None and case.dispute.refund.amount == 7_000

    def test_seller_silence_on_a_return_request_starts_the_return(self) -> None:
        case = open_case(resolution="return_and_refund")
        case.dispute.fire_timeout(case.later(days=5).by(SYSTEM), "seller_response_timeout")
        assert case.state == rules.AWAITING_RETURN

    def test_the_seller_accepting_grants_the_request_as_asked(self) -> None:
        case = open_case(amount=3_000)
        case.dispute.accept(case.later(hours=2).by(SELLER))
        assert case.dispute.refund is not None and case.dispute.refund.amount == 3_000
        assert case.dispute.seller_responded_at == case.at

    def test_a_rejection_gives_the_buyer_the_turn_for_five_days(self) -> None:
        case = buyers_turn()
        assert case.dispute.turn == "buyer"
        assert [d.as_dict() for d in case.dispute.deadlines] == [
            {"kind": "buyer_response", "due_from": "buyer", "due_at": case.at + timedelta(days=5)}
        ]
        assert case.dispute.seller_responded_at == case.at

    def test_a_rejection_with_evidence_marks_the_claim_contested(self) -> None:
        case = open_case()
        case.dispute.reject(case.later(hours=1).by(SELLER), reason="Fine", evidence=[PHOTO])
        assert case.dispute.contested
        assert case.dispute.evidence[-1]["added_by"] == "seller"

    def test_a_rejection_without_a_reason_is_refused(self) -> None:
        case = open_case()
        with pytest.raises(InvalidInput) as refused:
            case.dispute.reject(case.by(SELLER), reason="")
        assert refused.value.field == "reason"


class TestOffers:
    @pytest.mark.parametrize(
        ("offer_type", "amount", "rule"),
        [
            ("partial_refund", None, "required"),
            ("partial_refund", ORDER_AMOUNT, "below_order_amount"),
            ("partial_refund", 0, "minimum"),
            ("partial_refund", "10", "integer_minor_units"),
            ("full_refund", 5, "equals_order_amount"),
            ("return_and_refund", ORDER_AMOUNT + 1, "not_above_order_amount"),
            ("replacement", 5, "not_applicable"),
            ("store_credit", None, "one_of"),
        ],
    )
    def test_an_offer_with_a_bad_amount_or_type_is_refused(
        self, offer_type: str, amount: object, rule: str
    ) -> None:
        case = open_case()
        before = snapshot(case.dispute)
        with pytest.raises(InvalidInput) as refused:
            case.dispute.offer(case.by(SELLER), type=offer_type, amount=amount)
        assert refused.value.rule == rule
        assert snapshot(case.dispute) == before

    def test_an_amount_in_another_currency_is_refused(self) -> None:
        case = open_case()
        with pytest.raises(InvalidInput) as refused:
            case.dispute.offer(case.by(SELLER), type="partial_refund", amount=Money(5, "EUR"))
        assert refused.value.field == "amount.currency"

    def test_a_full_refund_offer_is_the_order_amount(self) -> None:
        case = open_case(amount=4_000)
        case.dispute.offer(case.by(SELLER), type="full_refund")
        assert case.dispute.standing_offer is not None
        assert case.dispute.standing_offer.amount == ORDER_AMOUNT

    def test_an_offer_stands_until_the_buyer_answers(self) -> None:
        case = with_offer("partial_refund", Money(4_000, "USD"))
        assert case.dispute.standing_offer is not None
        assert case.dispute.standing_offer.amount == 4_000
        assert case.dispute.turn == "buyer"

    def test_accepting_a_partial_offer_fixes_a_partial_refund(self) -> None:
        case = with_offer("partial_refund", 4_000)
        case.dispute.accept_offer(case.later(hours=1).by(BUYER))
        assert case.dispute.refund is not None and case.dispute.refund.amount == 4_000

    def test_accepting_a_replacement_closes_the_dispute(self) -> None:
        case = with_offer("replacement", None)
        case.dispute.accept_offer(case.later(hours=1).by(BUYER))
        assert (case.state, case.dispute.outcome) == (rules.CLOSED, Outcome.REPLACEMENT)

    def test_there_is_nothing_to_accept_without_a_standing_offer(self) -> None:
        case = buyers_turn()
        with pytest.raises(ActionNotAllowed) as refused:
            case.dispute.accept_offer(case.by(BUYER))
        assert "accept-offer" not in refused.value.allowed
        assert "no standing offer" in refused.value.message


class TestTurns:
    def test_the_seller_cannot_answer_on_the_buyers_turn(self) -> None:
        case = buyers_turn()
        for call in (
            lambda: case.dispute.offer(case.by(SELLER), type="full_refund"),
            lambda: case.dispute.reject(case.by(SELLER), reason="again"),
            lambda: case.dispute.accept(case.by(SELLER)),
        ):
            with pytest.raises(ActionNotAllowed):
                call()
        assert case.dispute.turn == "buyer"

    def test_the_buyer_cannot_counter_on_the_sellers_turn(self) -> None:
        case = sellers_turn()
        with pytest.raises(ActionNotAllowed) as refused:
            case.dispute.revise(case.by(BUYER), requested_resolution="refund_only", amount=5)
        assert "seller's turn" in refused.value.message

    def test_a_counter_request_replaces_the_standing_request_and_hands_over_the_turn(
        self,
    ) -> None:
        case = with_offer()
        case.dispute.revise(
            case.later(hours=3).by(BUYER), requested_resolution="return_and_refund", amount=9_000
        )
        d = case.dispute
        assert (d.requested_resolution, d.requested_amount) == ("return_and_refund", 9_000)
        assert (d.turn, d.standing_offer) == ("seller", None)
        assert [x.kind for x in d.deadlines] == ["seller_response"]
        assert d.deadlines[0].due_at == case.at + timedelta(days=5)

    @pytest.mark.parametrize(
        ("amount", "rule"), [(0, "minimum"), (ORDER_AMOUNT + 1, "not_above_order_amount")]
    )
    def test_a_counter_request_never_exceeds_the_order_amount(self, amount: int,
                                                               rule: str) -> None:  # fmt: skip
        case = buyers_turn()
        with pytest.raises(InvalidInput) as refused:
            case.dispute.revise(case.by(BUYER), requested_resolution="refund_only", amount=amount)
        assert refused.value.rule == rule

    def test_a_lapsed_seller_turn_grants_the_buyers_standing_request(self) -> None:
        case = sellers_turn(amount=8_000)
        case.dispute.fire_timeout(case.later(days=5).by(SYSTEM), "seller_response_timeout")
        assert case.dispute.refund is not None and case.dispute.refund.amount == 8_000

    def test_a_lapsed_buyer_turn_closes_the_dispute(self) -> None:
        case = with_offer()
        case.dispute.fire_timeout(case.later(days=5).by(SYSTEM), "buyer_response_timeout")
        assert (case.state, case.dispute.outcome) == (rules.CLOSED, Outcome.BUYER_LAPSED)
        assert case.dispute.standing_offer is None and case.dispute.closed_at == case.at


class TestEscalation:
    def test_the_buyer_may_not_escalate_before_the_seller_answered(self) -> None:
        case = open_case()
        with pytest.raises(ActionNotAllowed):
            case.dispute.escalate(case.by(BUYER), reason="Impatient")

    def test_the_buyer_may_escalate_on_either_turn(self) -> None:
        for case in (buyers_turn(), sellers_turn()):
            case.dispute.escalate(case.later(hours=1).by(BUYER), reason="Stuck")
            assert case.state == rules.UNDER_REVIEW

    def test_after_escalation_neither_party_may_revise(self) -> None:
        case = under_review()
        with pytest.raises(ActionNotAllowed):
            case.dispute.revise(case.by(BUYER), requested_resolution="refund_only", amount=1)
        with pytest.raises(ActionNotAllowed):
            case.dispute.reject(case.by(SELLER), reason="no")

    def test_escalation_ends_the_turns_and_starts_the_ruling_clock(self) -> None:
        case = under_review()
        assert (case.dispute.turn, case.dispute.escalated_at) == (None, case.at)
        assert [d.kind for d in case.dispute.deadlines] == ["ruling"]


class TestWithdrawal:
    @pytest.mark.parametrize("build", [open_case, buyers_turn, sellers_turn])
    def test_the_buyer_may_withdraw_before_review(self, build: object) -> None:
        case = build()  # type: ignore[operator]
        case.dispute.withdraw(case.later(hours=1).by(BUYER), reason="Parcel arrived")
        assert (case.state, case.dispute.outcome) == (rules.CLOSED, Outcome.WITHDRAWN)
        assert case.dispute.deadlines == []

    def test_the_buyer_may_not_withdraw_once_under_review(self) -> None:
        case = under_review()
        with pytest.raises(ActionNotAllowed):
            case.dispute.withdraw(case.by(BUYER), reason="Never mind")
