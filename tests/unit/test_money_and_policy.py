"""Money (integer minor units, ISO 4217) and Policy (fails fast on a bad value)."""

from __future__ import annotations

from typing import Any

import pytest

from services.dispute.domain import Policy, PolicyError
from services.dispute.domain.policy import MAX_SELLER_RESPONSE_DAYS
from shared.money import Money, MoneyError


class TestMoney:
    @pytest.mark.parametrize("amount", [1.5, 10.0, "100", True, None])
    def test_only_an_integer_of_minor_units_is_money(self, amount: Any) -> None:
        with pytest.raises(MoneyError) as refused:
            Money(amount, "USD")
        assert (refused.value.field, refused.value.rule) == ("amount", "integer_minor_units")

    @pytest.mark.parametrize("currency", ["usd", "XYZ", "", None, "US"])
    def test_only_an_iso_4217_code_is_a_currency(self, currency: Any) -> None:
        with pytest.raises(MoneyError) as refused:
            Money(100, currency)
        assert (refused.value.field, refused.value.rule) == ("currency", "iso_4217")

    @pytest.mark.parametrize(
        ("major", "currency", "minor", "text"),
        [(30, "USD", 3_000, "30.00 USD"), (30, "JPY", 30, "30 JPY"),
         (2, "KWD", 2_000, "2.000 KWD")],
    )  # fmt: skip
    def test_major_units_convert_by_the_currencys_exponent(
        self, major: int, currency: str, minor: int, text: str
    ) -> None:
        money = Money.of_major(major, currency)
        assert money == Money(minor, currency)
        assert str(money) == text

    def test_negative_amounts_print_with_their_sign(self) -> None:
        assert str(Money(-1_05, "EUR")) == "-1.05 EUR"

    def test_money_is_a_value(self) -> None:
        assert Money(5, "USD") == Money(5, "USD") != Money(5, "EUR")
        assert Money(5, "USD").to_dict() == {"amount": 5, "currency": "USD"}


class TestPolicy:
    def test_the_defaults_are_those_of_the_spec(self) -> None:
        policy = Policy()
        assert (policy.protection_after_delivery_days, policy.delivery_deadline_days,
                policy.protection_cap_days) == (15, 60, 90)  # fmt: skip
        assert (policy.seller_response_days, policy.offer_response_days) == (5, 5)
        assert (policy.info_request_days, policy.ruling_sla_business_days) == (3, 7)
        assert (policy.return_window_days, policy.return_confirmation_days) == (10, 5)
        assert policy.payout_business_days["card"] == 15
        assert policy.payout_business_days["wallet"] == 3

    @pytest.mark.parametrize(
        "bad",
        [
            {"seller_response_days": 0},
            {"offer_response_days": -1},
            {"return_window_days": True},
            {"info_request_days": 2.5},
            {"delivery_deadline_days": 91},
            {"seller_response_days": MAX_SELLER_RESPONSE_DAYS + 1},
            {"seller_response_days_by_reason": {"changed_my_mind": 5}},
            {"seller_response_days_by_reason": {"damaged": 16}},
            {"seller_response_days_by_reason": {"damaged": 0}},
            {"payout_business_days": {"card": 15, "wallet": 3}},
            {"payout_business_days": {"card": 0, "wallet": 3, "other": 15}},
            {"return_shipping_estimate": -1},
            {"return_address": "  "},
        ],
    )
    def test_a_senseless_value_fails_at_once(self, bad: dict[str, Any]) -> None:
        with pytest.raises(PolicyError):
            Policy(**bad)

    def test_the_per_reason_override_is_used_for_its_reason_only(self) -> None:
        policy = Policy(seller_response_days_by_reason={"not_as_described": 15})
        assert policy.seller_response_days_for("not_as_described") == 15
        assert policy.seller_response_days_for("damaged") == 5

    def test_a_policy_round_trips_through_its_dict(self) -> None:
        policy = Policy(seller_response_days_by_reason={"damaged": 10}, version="v2")
        assert Policy.from_dict(policy.as_dict()) == policy

    def test_unknown_keys_are_refused(self) -> None:
        with pytest.raises(PolicyError, match="sellr_response_days"):
            Policy.from_dict({"sellr_response_days": 5})
