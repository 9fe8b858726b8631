"""The return leg and the refund leg."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.dispute.domain import Policy, add_business_days, rules
from services.dispute.domain.errors import ActionNotAllowed, InvalidInput
from services.dispute.domain.values import SELLER_ERROR_REASONS, Outcome, Reason

from .helpers import (
    AGENT,
    BUYER,
    NO_APPEALS,
    ORDER_AMOUNT,
    PHOTO,
    SELLER,
    SERVICE,
    SYSTEM,
    awaiting_return,
    open_case,
    refund_pending,
    return_delivered,
    return_in_transit,
    under_review,
)


class TestReturnTerms:
    # (not_shipped asks for refund_only at opening: nothing to return)
    @pytest.mark.parametrize("reason", sorted({*Reason} - {Reason.NOT_SHIPPED}))
    def test_the_seller_pays_return_shipping_for_seller_error_else_the_buyer(
        self, reason: str
    ) -> None:
        case = awaiting_return(reason=reason)
        shipment = case.dispute.return_shipment
        assert shipment is not None
        payer = "seller" if reason in SELLER_ERROR_REASONS else "buyer"
        assert shipment.shipping_paid_by == payer
        assert shipment.address == Policy().return_address

    def test_the_buyer_has_ten_days_to_ship(self) -> None:
        case = awaiting_return()
        assert [d.as_dict() for d in case.dispute.deadlines] == [
            {"kind": "return_shipment", "due_from": "buyer",
             "due_at": case.at + timedelta(days=10)},
        ]  # fmt: skip

    def test_a_return_not_shipped_in_time_closes_the_dispute(self) -> None:
        case = awaiting_return()
        case.dispute.fire_timeout(case.later(days=10).by(SYSTEM), "return_shipment_timeout")
        assert (case.state, case.dispute.outcome) == (rules.CLOSED, Outcome.RETURN_NOT_SHIPPED)


class TestShippingTheReturn:
    def test_the_buyer_gives_carrier_and_tracking(self) -> None:
        case = return_in_transit()
        shipment = case.dispute.return_shipment
        assert shipment is not None
        assert (shipment.carrier, shipment.tracking_number) == ("DHL", "JD1")
        assert shipment.shipped_at == case.at
        assert case.dispute.deadlines == []

    @pytest.mark.parametrize("field", ["carrier", "tracking_number"])
    def test_carrier_and_tracking_are_required(self, field: str) -> None:
        case = awaiting_return()
        args = {"carrier": "DHL", "tracking_number": "JD1", field: ""}
        with pytest.raises(InvalidInput) as refused:
            case.dispute.ship_return(case.by(BUYER), **args)
        assert refused.value.field == field

    def test_delivery_is_reported_once_and_starts_the_sellers_five_days(self) -> None:
        case = return_delivered()
        assert [d.as_dict() for d in case.dispute.deadlines] == [
            {"kind": "return_confirmation", "due_from": "seller",
             "due_at": case.at + timedelta(days=5)},
        ]  # fmt: skip
        with pytest.raises(ActionNotAllowed):
            case.dispute.return_delivered(case.by(SERVICE), delivered_at=case.at)

    def test_a_delivery_before_shipping_or_in_the_future_is_refused(self) -> None:
        case = return_in_transit()
        shipped = case.at
        case.later(days=2)
        for when, rule in ((shipped - timedelta(hours=1), "not_before_shipped"),
                           (case.at + timedelta(hours=1), "not_in_future")):  # fmt: skip
            with pytest.raises(InvalidInput) as refused:
                case.dispute.return_delivered(case.by(SERVICE), delivered_at=when)
            assert refused.value.rule == rule

    def test_the_confirmation_window_counts_from_delivery_not_from_the_report(self) -> None:
        case = return_in_transit()
        delivered = case.at + timedelta(days=1)
        case.dispute.return_delivered(case.later(days=3).by(SERVICE), delivered_at=delivered)
        assert case.dispute.deadlines[0].due_at == delivered + timedelta(days=5)


class TestSellerAnswersTheReturn:
    def test_confirming_receipt_starts_the_agreed_refund(self) -> None:
        case = return_delivered(amount=6_000)
        case.dispute.confirm_return(case.later(hours=1).by(SELLER))
        assert case.state == rules.REFUND_PENDING
        assert case.dispute.refund is not None and case.dispute.refund.amount == 6_000

    def test_contesting_the_received_item_sends_it_to_review(self) -> None:
        case = return_delivered()
        case.dispute.contest_return(case.later(hours=1).by(SELLER), reason="Box was empty")
        assert case.state == rules.UNDER_REVIEW
        assert case.dispute.contested and case.dispute.escalated_at == case.at
        assert [d.kind for d in case.dispute.deadlines] == ["ruling"]

    def test_seller_silence_five_days_after_delivery_lets_the_refund_go_ahead(self) -> None:
        case = return_delivered()
        case.dispute.fire_timeout(case.later(days=5).by(SYSTEM), "return_confirmation_timeout")
        assert case.state == rules.REFUND_PENDING

    def test_without_a_reported_delivery_the_seller_is_never_timed_out(self) -> None:
        case = return_in_transit()
        assert case.dispute.due_timeouts(case.later(days=365).at) == []


class TestRefund:
    @pytest.mark.parametrize(("method", "days"), [("card", 15), ("wallet", 3), ("other", 15)])
    def test_the_payout_is_expected_within_the_methods_business_days(
        self, method: str, days: int
    ) -> None:
        case = refund_pending(payment_method=method)
        refund = case.dispute.refund
        assert refund is not None
        assert refund.expected_by == add_business_days(case.at, days)
        assert [d.as_dict() for d in case.dispute.deadlines] == [
            {"kind": "refund_payout", "due_from": "service", "due_at": refund.expected_by}
        ]
        assert case.dispute.due_timeouts(case.later(days=90).at) == []

    def test_a_failed_refund_is_recorded_and_stays_pending_for_a_retry(self) -> None:
        case = refund_pending()
        case.dispute.refund_failed(case.later(days=1).by(SERVICE), reason="Card expired")
        case.dispute.refund_failed(case.later(days=1).by(SERVICE), reason="Bank down")
        assert case.state == rules.REFUND_PENDING
        assert case.dispute.refund is not None
        assert [f.reason for f in case.dispute.refund.failures] == [
            "Card expired", "Bank down",
        ]  # fmt: skip

    @pytest.mark.parametrize(
        ("amount", "outcome"),
        [(ORDER_AMOUNT, Outcome.REFUNDED_FULL), (ORDER_AMOUNT - 1, Outcome.REFUNDED_PARTIAL)],
    )
    def test_a_paid_refund_closes_as_full_or_partial(self, amount: int, outcome: str) -> None:
        case = refund_pending(amount=amount)
        paid = case.later(days=3).at - timedelta(hours=1)
        case.dispute.refund_paid(case.by(SERVICE), reference="PAY-9", paid_at=paid)
        assert (case.state, case.dispute.outcome) == (rules.CLOSED, outcome)
        assert case.dispute.refund is not None
        assert (case.dispute.refund.reference, case.dispute.refund.paid_at) == (
            "PAY-9", paid,
        )  # fmt: skip

    def test_a_payment_time_in_the_future_is_refused(self) -> None:
        case = refund_pending()
        with pytest.raises(InvalidInput) as refused:
            case.dispute.refund_paid(case.by(SERVICE), reference="P",
                                     paid_at=case.at + timedelta(hours=1))  # fmt: skip
        assert (refused.value.field, refused.value.rule) == ("paid_at", "not_in_future")

    def test_the_refund_is_fixed_in_the_order_currency_when_it_becomes_pending(self) -> None:
        case = under_review(policy=NO_APPEALS)
        case.dispute.rule(case.by(AGENT), decision="partial_refund", amount=1_234, rationale="x")
        refund = case.dispute.refund
        assert refund is not None
        assert (refund.amount, refund.currency, refund.started_at) == (
            1_234, "USD", case.at,
        )  # fmt: skip

    def test_evidence_is_closed_once_the_refund_is_pending(self) -> None:
        case = refund_pending()
        with pytest.raises(ActionNotAllowed):
            case.dispute.add_evidence(case.by(BUYER), evidence=[PHOTO])

    def test_a_weekend_start_counts_from_monday(self) -> None:
        saturday = datetime(2026, 3, 7, 10, 0, tzinfo=UTC)
        case = open_case(at=saturday, payment_method="wallet")
        case.dispute.accept(case.by(SELLER))
        assert case.dispute.refund is not None
        assert case.dispute.refund.expected_by == datetime(2026, 3, 11, 10, 0, tzinfo=UTC)
