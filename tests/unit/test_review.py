"""Review by the marketplace: information requests, offers during review, the ruling.

Rulings here take effect at once (a policy with no appeal window); test_appeals.py covers
the window, appeals and the ruling that takes effect after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.dispute.domain import add_business_days, rules
from services.dispute.domain.errors import ActionNotAllowed, InvalidInput
from services.dispute.domain.values import Outcome

from . import helpers
from .helpers import (
    AGENT,
    BUYER,
    NO_APPEALS,
    ORDER_AMOUNT,
    PHOTO,
    SELLER,
    SYSTEM,
    Case,
    buyers_turn,
    offer_in_review,
    snapshot,
)


def under_review(**kwargs: object) -> Case:
    return helpers.under_review(**{"policy": NO_APPEALS, **kwargs})


def asked(party: str = "buyer") -> Case:
    case = under_review()
    case.dispute.request_info(case.later(hours=1).by(AGENT), from_=party, question="Label?")
    return case


def statuses(case: Case) -> list[tuple[str, str]]:
    return [(r["from"], r["status"]) for r in case.dispute.info_requests]


class TestRulingSla:
    def test_the_ruling_is_due_seven_business_days_after_escalation(self) -> None:
        friday = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
        case = buyers_turn(at=friday - timedelta(hours=2))
        case.at = friday
        case.dispute.escalate(case.by(BUYER), reason="Stuck")
        [ruling] = case.dispute.deadlines
        # Mon 9 .. Fri 13 is five, Mon 16 and Tue 17 make seven; weekends do not count.
        assert ruling.due_at == datetime(2026, 3, 17, 16, 0, tzinfo=UTC)
        assert ruling.due_from == "agent"

    def test_a_late_ruling_is_an_sla_not_a_time_out(self) -> None:
        case = under_review()
        assert case.dispute.due_timeouts(case.later(days=60).at) == []
        case.dispute.rule(case.by(AGENT), decision="full_refund", rationale="Late but fair")
        assert case.state == rules.REFUND_PENDING

    @pytest.mark.parametrize(
        ("start", "days", "expected"),
        [
            (datetime(2026, 3, 2, tzinfo=UTC), 3, datetime(2026, 3, 5, tzinfo=UTC)),  # Mon
            (datetime(2026, 3, 5, tzinfo=UTC), 3, datetime(2026, 3, 10, tzinfo=UTC)),  # Thu
            (datetime(2026, 3, 7, tzinfo=UTC), 1, datetime(2026, 3, 9, tzinfo=UTC)),  # Sat
            (datetime(2026, 3, 2, tzinfo=UTC), 15, datetime(2026, 3, 23, tzinfo=UTC)),
        ],
    )
    def test_business_days_skip_weekends(
        self, start: datetime, days: int, expected: datetime
    ) -> None:
        assert add_business_days(start, days) == expected


class TestInformationRequests:
    def test_an_information_request_is_due_in_three_days_by_default(self) -> None:
        case = asked("seller")
        assert case.dispute.deadlines[-1].as_dict() == {
            "kind": "info_request_seller", "due_from": "seller",
            "due_at": case.at + timedelta(days=3),
        }  # fmt: skip
        assert statuses(case) == [("seller", "open")]

    @pytest.mark.parametrize(
        "answer",
        [
            lambda c: c.dispute.add_evidence(c.by(BUYER), evidence=[PHOTO]),
            lambda c: c.dispute.post_message(c.by(BUYER), body="Here it is"),
        ],
        ids=["evidence", "message"],
    )
    def test_evidence_or_a_message_of_the_asked_party_answers_it(self, answer: object) -> None:
        case = asked("buyer")
        answer(case.later(hours=5))  # type: ignore[operator]
        assert statuses(case) == [("buyer", "answered")]
        assert [d.kind for d in case.dispute.deadlines] == ["ruling"]

    def test_the_other_party_speaking_does_not_answer_it(self) -> None:
        case = asked("buyer")
        case.dispute.post_message(case.later(hours=5).by(SELLER), body="Buyer is lying")
        assert statuses(case) == [("buyer", "open")]

    def test_a_lapsed_request_is_recorded_and_the_review_goes_on(self) -> None:
        case = asked("seller")
        case.dispute.fire_timeout(case.later(days=3).by(SYSTEM), "info_request_timeout")
        assert case.state == rules.UNDER_REVIEW
        assert statuses(case) == [("seller", "lapsed")]
        [lapsed] = case.dispute.collect_events()[-1:]
        assert lapsed.parties == ["seller"]
        case.dispute.rule(case.later(hours=1).by(AGENT), decision="full_refund", rationale="x")
        assert case.state == rules.REFUND_PENDING

    def test_only_due_requests_lapse(self) -> None:
        case = asked("seller")
        case.dispute.request_info(case.later(days=2).by(AGENT), from_="buyer", question="Box?")
        case.dispute.fire_timeout(case.later(days=1).by(SYSTEM), "info_request_timeout")
        assert statuses(case) == [("seller", "lapsed"), ("buyer", "open")]
        assert "info_request_buyer" in [d.kind for d in case.dispute.deadlines]

    def test_a_new_request_to_the_same_party_supersedes_the_open_one(self) -> None:
        case = asked("buyer")
        case.dispute.request_info(case.later(hours=1).by(AGENT), from_="buyer", question="More")
        assert statuses(case) == [("buyer", "superseded"), ("buyer", "open")]
        assert [d.kind for d in case.dispute.deadlines].count("info_request_buyer") == 1

    @pytest.mark.parametrize(
        ("args", "field", "rule"),
        [
            ({"from_": "agent", "question": "?"}, "from", "one_of"),
            ({"from_": "buyer", "question": ""}, "question", "required"),
            ({"from_": "buyer", "question": "?", "due_at": "tomorrow"}, "due_at", "timezone"),
        ],
    )
    def test_an_invalid_request_is_refused(self, args: dict[str, object], field: str,
                                           rule: str) -> None:  # fmt: skip
        case = under_review()
        with pytest.raises(InvalidInput) as refused:
            case.dispute.request_info(case.by(AGENT), **args)
        assert (refused.value.field, refused.value.rule) == (field, rule)

    def test_a_due_date_in_the_past_is_refused(self) -> None:
        case = under_review()
        with pytest.raises(InvalidInput) as refused:
            case.dispute.request_info(case.by(AGENT), from_="buyer", question="?", due_at=case.at)
        assert refused.value.rule == "in_future"

    def test_information_is_requested_only_during_review(self) -> None:
        case = buyers_turn()
        with pytest.raises(ActionNotAllowed):
            case.dispute.request_info(case.by(AGENT), from_="buyer", question="?")


class TestOffersDuringReview:
    def test_the_seller_may_still_offer_and_the_buyer_accept(self) -> None:
        case = offer_in_review("partial_refund", 3_000)
        assert case.dispute.turn is None
        case.dispute.accept_offer(case.later(hours=1).by(BUYER))
        assert case.dispute.refund is not None and case.dispute.refund.amount == 3_000

    def test_an_offer_during_review_keeps_the_ruling_deadline(self) -> None:
        case = under_review()
        deadlines = case.dispute.deadlines
        case.dispute.offer(case.later(hours=1).by(SELLER), type="full_refund")
        assert case.dispute.deadlines == deadlines


class TestRuling:
    @pytest.mark.parametrize(
        ("decision", "amount", "state", "refund"),
        [
            ("full_refund", None, rules.REFUND_PENDING, ORDER_AMOUNT),
            ("partial_refund", 2_500, rules.REFUND_PENDING, 2_500),
            ("return_and_refund", None, rules.AWAITING_RETURN, None),
            ("seller_favoured", None, rules.CLOSED, None),
        ],
    )
    def test_a_ruling_leads_where_its_decision_says(
        self, decision: str, amount: int | None, state: str, refund: int | None
    ) -> None:
        case = under_review()
        case.dispute.rule(case.later(days=1).by(AGENT), decision=decision, amount=amount,
                          rationale="Seen the photos")  # fmt: skip
        assert case.state == state
        assert getattr(case.dispute.refund, "amount", None) == refund
        assert case.dispute.ruling is not None
        assert (case.dispute.ruling.agent_id, case.dispute.ruling.at) == (AGENT.id, case.at)

    def test_a_seller_favoured_ruling_grants_nothing(self) -> None:
        case = under_review()
        case.dispute.rule(case.by(AGENT), decision="seller_favoured", rationale="Not damaged")
        assert case.dispute.outcome == Outcome.SELLER_FAVOURED
        assert case.dispute.refund is None and case.dispute.resolution is not None
        assert case.dispute.resolution.amount is None

    @pytest.mark.parametrize(
        ("args", "field", "rule"),
        [
            ({"decision": "split"}, "decision", "one_of"),
            ({"decision": "partial_refund"}, "amount", "required"),
            ({"decision": "partial_refund", "amount": ORDER_AMOUNT}, "amount",
             "below_order_amount"),
            ({"decision": "return_and_refund", "amount": ORDER_AMOUNT + 1}, "amount",
             "not_above_order_amount"),
            ({"decision": "seller_favoured", "amount": 1}, "amount", "not_applicable"),
            ({"decision": "full_refund", "return_shipping_paid_by": "buyer"},
             "return_shipping_paid_by", "only_with_return"),
            ({"decision": "return_and_refund", "return_shipping_paid_by": "agent"},
             "return_shipping_paid_by", "one_of"),
            ({"decision": "full_refund", "rationale": ""}, "rationale", "required"),
        ],
    )  # fmt: skip
    def test_an_invalid_ruling_is_refused_and_changes_nothing(
        self, args: dict[str, object], field: str, rule: str
    ) -> None:
        case = under_review()
        before = snapshot(case.dispute)
        with pytest.raises(InvalidInput) as refused:
            case.dispute.rule(case.by(AGENT), **{"rationale": "x", **args})
        assert (refused.value.field, refused.value.rule) == (field, rule)
        assert snapshot(case.dispute) == before

    def test_a_ruling_closes_open_information_requests(self) -> None:
        case = asked("buyer")
        case.dispute.rule(case.by(AGENT), decision="full_refund", rationale="Enough")
        assert statuses(case) == [("buyer", "closed")]

    def test_the_agent_may_name_who_pays_return_shipping(self) -> None:
        case = under_review(reason="damaged")
        case.dispute.rule(case.by(AGENT), decision="return_and_refund",
                          return_shipping_paid_by="buyer", rationale="Both at fault")  # fmt: skip
        assert case.dispute.return_shipment is not None
        assert case.dispute.return_shipment.shipping_paid_by == "buyer"
