"""Chargebacks (seeds 002, 003), reported by the payments service on an order: recorded
there; an open dispute closes with outcome `chargeback` and no refund is paid for it
afterwards; after a paid refund it is a double recovery; no dispute can be opened."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.dispute.domain import Dispute, Order, Policy, rules
from services.dispute.domain.errors import (
    ActionNotAllowed,
    ChargebackExists,
    InvalidInput,
    OrderChargedBack,
    RoleNotPermitted,
)
from services.dispute.domain.values import Outcome
from shared.money import Money

from .helpers import (
    BUYER,
    ORDER_AMOUNT,
    PHOTO,
    SELLER,
    SERVICE,
    T0,
    ctx,
    make_order,
    open_case,
    refund_pending,
    snapshot,
)


def charge_back(order: Order, *, at: object = T0, refund_paid: int | None = None,
                **overrides: object) -> dict[str, object]:  # fmt: skip
    args: dict[str, object] = {
        "reference": "CB-1",
        "amount": Money(ORDER_AMOUNT, "USD"),
        "reason": "fraud: not recognised",
        "opened_at": T0 - timedelta(days=1),
        "refund_paid": refund_paid,
    }
    return order.record_chargeback(ctx(SERVICE, at), **{**args, **overrides})  # type: ignore[arg-type]


class TestRecordingOnTheOrder:
    def test_a_chargeback_without_a_dispute_is_recorded_and_blocks_opening_one(self) -> None:
        order = make_order()
        recorded = charge_back(order)
        assert recorded == {
            "reference": "CB-1", "amount": ORDER_AMOUNT, "reason": "fraud: not recognised",
            "opened_at": T0 - timedelta(days=1), "recorded_at": T0, "dispute_id": None,
            "double_recovery": False, "amount_at_risk": None,
        }  # fmt: skip
        assert order.chargebacks == [recorded]
        with pytest.raises(OrderChargedBack) as refused:
            Dispute.open(ctx(BUYER, T0 + timedelta(hours=1)), order, reason="damaged",
                         requested_resolution="refund_only", amount=Money(ORDER_AMOUNT, "USD"),
                         description="x", evidence=[PHOTO], policy=Policy())  # fmt: skip
        assert "CB-1" in refused.value.message and order.dispute_id is None

    def test_after_a_paid_refund_it_is_a_double_recovery_with_the_amount_at_risk(self) -> None:
        order = make_order()
        recorded = charge_back(order, refund_paid=4_000, amount=Money(6_000, "USD"))
        assert (recorded["double_recovery"], recorded["amount_at_risk"]) == (True, 4_000)
        recorded = charge_back(order, refund_paid=ORDER_AMOUNT, reference="CB-2",
                               amount=Money(2_500, "USD"))  # fmt: skip
        assert recorded["amount_at_risk"] == 2_500

    def test_only_a_service_reports_chargebacks(self) -> None:
        order = make_order()
        for actor in (BUYER, SELLER):
            with pytest.raises(RoleNotPermitted):
                order.record_chargeback(ctx(actor), reference="CB", amount=Money(1, "USD"),
                                        reason="x", opened_at=T0, refund_paid=None)  # fmt: skip
        assert order.chargebacks == []

    def test_a_reference_is_recorded_once(self) -> None:
        order = make_order()
        charge_back(order)
        with pytest.raises(ChargebackExists):
            charge_back(order, at=T0 + timedelta(hours=1))
        assert len(order.chargebacks) == 1

    @pytest.mark.parametrize(
        ("overrides", "field", "rule"),
        [
            ({"amount": Money(ORDER_AMOUNT + 1, "USD")}, "amount.amount",
             "not_above_order_amount"),
            ({"amount": Money(0, "USD")}, "amount.amount", "minimum"),
            ({"amount": Money(100, "EUR")}, "amount.currency", "order_currency"),
            ({"reference": ""}, "reference", "required"),
            ({"reason": "x" * 1001}, "reason", "max_length"),
            ({"opened_at": T0 + timedelta(days=1)}, "opened_at", "not_in_future"),
            ({"opened_at": T0 - timedelta(days=30)}, "opened_at", "not_before_placed_at"),
            ({"opened_at": "yesterday"}, "opened_at", "timezone"),
        ],
    )  # fmt: skip
    def test_bad_facts_are_refused_naming_field_and_rule(
        self, overrides: dict[str, object], field: str, rule: str
    ) -> None:
        order = make_order()
        with pytest.raises(InvalidInput) as refused:
            charge_back(order, **overrides)
        assert (refused.value.field, refused.value.rule) == (field, rule)
        assert order.chargebacks == []


class TestTheOpenDispute:
    def test_it_closes_with_outcome_chargeback(self) -> None:
        case = open_case()
        case.dispute.close_by_chargeback(case.later(days=1).by(SERVICE), reference="CB-1",
                                         amount=ORDER_AMOUNT)  # fmt: skip
        assert (case.state, case.dispute.outcome) == (rules.CLOSED, Outcome.CHARGEBACK)
        assert case.dispute.chargeback == {"reference": "CB-1", "amount": ORDER_AMOUNT,
                                           "at": case.at}  # fmt: skip
        assert case.dispute.deadlines == [] and case.dispute.closed_at == case.at

    def test_a_refund_pending_is_never_paid_afterwards(self) -> None:
        case = refund_pending()
        case.dispute.close_by_chargeback(case.later(days=1).by(SERVICE), reference="CB-1",
                                         amount=ORDER_AMOUNT)  # fmt: skip
        before = snapshot(case.dispute)
        with pytest.raises(ActionNotAllowed) as refused:
            case.dispute.refund_paid(case.later(hours=1).by(SERVICE), reference="re_late",
                                     paid_at=case.at)  # fmt: skip
        assert "chargeback" in refused.value.message
        assert snapshot(case.dispute) == before
        assert case.dispute.refund is not None and case.dispute.refund.paid_at is None

    def test_a_closed_dispute_is_not_closed_again(self) -> None:
        case = refund_pending()
        case.dispute.refund_paid(case.later(hours=1).by(SERVICE), reference="re", paid_at=case.at)
        with pytest.raises(ActionNotAllowed):
            case.dispute.close_by_chargeback(case.by(SERVICE), reference="CB", amount=1)
        assert case.dispute.outcome == Outcome.REFUNDED_FULL

    def test_no_party_may_report_one(self) -> None:
        case = open_case()
        for actor in (BUYER, SELLER):
            with pytest.raises(RoleNotPermitted):
                case.dispute.close_by_chargeback(case.by(actor), reference="CB", amount=1)
        assert "chargeback" not in case.dispute.allowed_actions(SERVICE)  # not an action
