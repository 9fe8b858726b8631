"""Cancelling before shipment (seeds 001, 004): reason `not_shipped`, only while the order
has no `shipped_at`, refund only of the full amount, no evidence; the seller accepts or
rejects with proof of shipment; silence refunds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.dispute.domain import Dispute, Policy, recommend, rules
from services.dispute.domain.errors import InvalidInput, OrderAlreadyShipped
from services.dispute.domain.values import Outcome
from shared.money import Money

from .helpers import (
    BUYER,
    ORDER_AMOUNT,
    PHOTO,
    SELLER,
    SERVICE,
    SYSTEM,
    T0,
    TRACKING,
    ctx,
    facts,
    make_order,
    not_shipped,
    snapshot,
)


def cancel(order: object, **overrides: object) -> Dispute:
    args: dict[str, object] = {
        "reason": "not_shipped",
        "requested_resolution": "refund_only",
        "amount": Money(ORDER_AMOUNT, "USD"),
        "description": "Not shipped after a week",
        "evidence": [],
        "policy": Policy(),
    }
    return Dispute.open(ctx(BUYER), order, **{**args, **overrides})  # type: ignore[arg-type]


class TestOpening:
    def test_an_unshipped_order_is_disputed_for_the_full_amount_without_evidence(self) -> None:
        case = not_shipped()
        assert (case.state, case.dispute.reason) == (rules.AWAITING_SELLER, "not_shipped")
        assert case.dispute.evidence == []
        [deadline] = case.dispute.deadlines
        assert (deadline.kind, deadline.due_at) == ("seller_response", T0 + timedelta(days=5))

    def test_a_shipped_order_is_refused_naming_when_it_shipped(self) -> None:
        order = make_order(shipped_at=T0 - timedelta(days=2))
        with pytest.raises(OrderAlreadyShipped) as refused:
            cancel(order)
        assert (refused.value.field, refused.value.rule) == ("reason", "order_not_shipped")
        assert (T0 - timedelta(days=2)).isoformat() in refused.value.message
        assert order.dispute_id is None

    @pytest.mark.parametrize(
        ("overrides", "field", "rule"),
        [
            ({"requested_resolution": "return_and_refund"}, "requested_resolution",
             "refund_only_when_not_shipped"),
            ({"amount": Money(ORDER_AMOUNT - 1, "USD")}, "amount.amount", "equals_order_amount"),
        ],
    )  # fmt: skip
    def test_it_asks_for_refund_only_of_the_full_amount(
        self, overrides: dict[str, object], field: str, rule: str
    ) -> None:
        with pytest.raises(InvalidInput) as refused:
            cancel(make_order(), **overrides)
        assert (refused.value.field, refused.value.rule) == (field, rule)

    def test_the_response_window_is_policy(self) -> None:
        policy = Policy(seller_response_days_by_reason={"not_shipped": 7})
        case = not_shipped(policy=policy)
        assert case.dispute.deadlines[0].due_at == T0 + timedelta(days=7)


class TestTheSellersAnswer:
    def test_accepting_cancels_and_refunds_in_full(self) -> None:
        case = not_shipped()
        case.dispute.accept(case.later(hours=2).by(SELLER))
        assert case.state == rules.REFUND_PENDING
        assert case.dispute.refund is not None and case.dispute.refund.amount == ORDER_AMOUNT
        case.dispute.refund_paid(case.later(days=1).by(SERVICE), reference="re_1", paid_at=case.at)
        assert case.dispute.outcome == Outcome.REFUNDED_FULL

    def test_silence_past_the_window_grants_the_refund(self) -> None:
        case = not_shipped()
        case.dispute.fire_timeout(case.later(days=5).by(SYSTEM), "seller_response_timeout")
        assert case.state == rules.REFUND_PENDING
        assert case.dispute.refund is not None and case.dispute.refund.amount == ORDER_AMOUNT

    def test_rejecting_needs_proof_of_shipment(self) -> None:
        case = not_shipped()
        before = snapshot(case.dispute)
        with pytest.raises(InvalidInput) as refused:
            case.dispute.reject(case.later(hours=1).by(SELLER), reason="Sent", evidence=[PHOTO])
        assert (refused.value.field, refused.value.rule) == ("evidence", "tracking_required")
        assert snapshot(case.dispute) == before

    def test_rejecting_with_tracking_leads_to_negotiation(self) -> None:
        case = not_shipped()
        case.dispute.reject(case.later(hours=1).by(SELLER), reason="Shipped", evidence=[TRACKING])
        assert (case.state, case.dispute.turn) == (rules.NEGOTIATING, "buyer")


class TestShippingReportedMeanwhile:
    def test_a_shipped_at_reported_while_open_is_recorded_and_changes_nothing(self) -> None:
        case = not_shipped()
        before = snapshot(case.dispute)
        shipped = T0 + timedelta(hours=3)
        case.order.record_facts(ctx(SERVICE, T0 + timedelta(hours=4)), facts(shipped_at=shipped))
        assert case.order.shipped_at == shipped
        assert snapshot(case.dispute) == before


class TestRecommendation:
    def test_no_proof_of_shipment_recommends_a_full_refund(self) -> None:
        rec = recommend(not_shipped().dispute)
        assert (rec.decision, rec.amount, rec.return_required) == (
            "full_refund", ORDER_AMOUNT, False,
        )  # fmt: skip

    def test_the_sellers_tracking_leaves_it_to_the_agent(self) -> None:
        case = not_shipped()
        case.dispute.reject(case.later(hours=1).by(SELLER), reason="Shipped", evidence=[TRACKING])
        assert not recommend(case.dispute).basis.startswith("not shipped")
