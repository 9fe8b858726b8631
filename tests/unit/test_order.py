"""Orders: registering facts, facts only moving forward, and the protection window."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.dispute.domain import Order, Policy
from services.dispute.domain.errors import (
    ExtensionRefused,
    InvalidInput,
    OrderFactsConflict,
    RoleNotPermitted,
)

from .helpers import AGENT, BUYER, OTHER_BUYER, SELLER, SERVICE, SYSTEM, T0, ctx, facts, make_order

PLACED = T0 - timedelta(days=10)
DELIVERED = T0 - timedelta(days=2)


class TestRegisteringAnOrder:
    def test_only_a_service_registers_orders(self) -> None:
        for actor in (BUYER, SELLER, AGENT):
            with pytest.raises(RoleNotPermitted):
                Order.register(ctx(actor), "order-1", facts(), Policy())

    def test_registration_records_the_facts_and_the_policy_it_was_registered_under(
        self,
    ) -> None:
        policy = Policy(protection_after_delivery_days=20, delivery_deadline_days=50)
        order = make_order(policy=policy, shipped_at=PLACED + timedelta(days=1),
                           delivered_at=DELIVERED)  # fmt: skip
        assert (order.amount, order.currency, order.payment_method) == (10_000, "USD", "card")
        assert order.protection["after_delivery_days"] == 20
        assert order.protection["delivery_deadline_days"] == 50
        assert [type(e).__name__ for e in order.collect_events()] == [
            "Registered", "ShippingRecorded", "DeliveryRecorded",
        ]  # fmt: skip

    def test_the_order_id_is_derived_from_the_marketplace_reference(self) -> None:
        assert make_order(ref="o-9").id == make_order(ref="o-9").id != make_order(ref="o-8").id

    @pytest.mark.parametrize(
        ("kwargs", "field", "rule"),
        [
            ({"shipped_at": PLACED - timedelta(days=1)}, "shipped_at", "not_before_placed_at"),
            ({"delivered_at": PLACED - timedelta(days=1)}, "delivered_at",
             "not_before_shipped_at"),
            ({"payment_method": "cash"}, "payment_method", "one_of"),
            ({"amount": 0}, "amount.amount", "minimum"),
            ({"buyer_id": " "}, "buyer_id", "required"),
        ],
    )  # fmt: skip
    def test_impossible_facts_are_refused_naming_field_and_rule(
        self, kwargs: dict[str, object], field: str, rule: str
    ) -> None:
        with pytest.raises(InvalidInput) as refused:
            facts(**kwargs)  # type: ignore[arg-type]
        assert (refused.value.field, refused.value.rule) == (field, rule)

    def test_a_naive_time_is_refused(self) -> None:
        with pytest.raises(InvalidInput) as refused:
            facts(placed_at=PLACED.replace(tzinfo=None))
        assert (refused.value.field, refused.value.rule) == ("placed_at", "timezone")

    def test_facts_from_the_future_are_refused(self) -> None:
        with pytest.raises(InvalidInput) as refused:
            make_order(at=T0, delivered_at=T0 + timedelta(hours=1))
        assert (refused.value.field, refused.value.rule) == ("delivered_at", "not_in_future")


class TestOrderFactsOnlyMoveForward:
    def test_the_same_facts_again_record_nothing(self) -> None:
        order = make_order(delivered_at=DELIVERED)
        order.collect_events()
        assert order.record_facts(ctx(SERVICE), facts(delivered_at=DELIVERED)) is False
        assert order.collect_events() == []

    def test_new_shipping_and_delivery_facts_are_recorded(self) -> None:
        order = make_order()
        order.collect_events()
        shipped = PLACED + timedelta(days=1)
        tracking = {"carrier": "DHL", "number": "JD1"}
        assert order.record_facts(
            ctx(SERVICE), facts(shipped_at=shipped, tracking=tracking, delivered_at=DELIVERED)
        )
        assert (order.shipped_at, order.tracking, order.delivered_at) == (
            shipped, tracking, DELIVERED,
        )  # fmt: skip
        assert len(order.collect_events()) == 2

    def test_leaving_out_a_recorded_fact_does_not_erase_it(self) -> None:
        order = make_order(delivered_at=DELIVERED)
        assert order.record_facts(ctx(SERVICE), facts()) is False
        assert order.delivered_at == DELIVERED

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"buyer_id": "buyer-9"}, "buyer_id"),
            ({"seller_id": "seller-9"}, "seller_id"),
            ({"amount": 9_999}, "amount"),
            ({"currency": "EUR"}, "amount"),
            ({"payment_method": "wallet"}, "payment_method"),
            ({"placed_at": PLACED + timedelta(hours=1)}, "placed_at"),
            ({"delivered_at": DELIVERED + timedelta(hours=1)}, "delivered_at"),
            ({"shipped_at": PLACED + timedelta(hours=2)}, "shipped_at"),
            ({"tracking": {"carrier": "UPS", "number": "1Z"}}, "tracking"),
        ],
    )
    def test_a_contradiction_of_a_recorded_fact_is_refused(
        self, kwargs: dict[str, object], field: str
    ) -> None:
        order = make_order(
            shipped_at=PLACED + timedelta(hours=1),
            tracking={"carrier": "DHL", "number": "JD1"},
            delivered_at=DELIVERED,
        )
        order.collect_events()
        with pytest.raises(OrderFactsConflict) as refused:
            order.record_facts(ctx(SERVICE), facts(**kwargs))  # type: ignore[arg-type]
        assert refused.value.field == field
        assert order.collect_events() == []

    def test_a_shipping_date_after_the_recorded_delivery_is_refused(self) -> None:
        order = make_order(delivered_at=DELIVERED)
        with pytest.raises(InvalidInput) as refused:
            order.record_facts(ctx(SERVICE), facts(shipped_at=DELIVERED + timedelta(hours=1)))
        assert refused.value.rule == "not_after_delivered_at"

    def test_a_delivery_before_the_recorded_shipping_is_refused(self) -> None:
        order = make_order(shipped_at=DELIVERED)
        with pytest.raises(InvalidInput) as refused:
            order.record_facts(ctx(SERVICE), facts(delivered_at=DELIVERED - timedelta(hours=1)))
        assert refused.value.rule == "not_before_shipped_at"

    def test_only_a_service_updates_orders(self) -> None:
        with pytest.raises(RoleNotPermitted):
            make_order().record_facts(ctx(SELLER), facts(delivered_at=DELIVERED))


class TestProtectionWindow:
    def test_it_ends_fifteen_days_after_delivery(self) -> None:
        assert make_order(delivered_at=DELIVERED).protection_ends_at == DELIVERED + timedelta(
            days=15
        )

    def test_without_delivery_it_ends_at_the_delivery_deadline_sixty_days_after_placing(
        self,
    ) -> None:
        assert make_order().protection_ends_at == PLACED + timedelta(days=60)

    def test_a_late_delivery_cannot_push_it_past_the_delivery_deadline(self) -> None:
        placed = T0 - timedelta(days=58)
        order = make_order(placed_at=placed, delivered_at=T0 - timedelta(days=1))
        assert order.protection_ends_at == placed + timedelta(days=60)

    def test_it_uses_the_policy_the_order_was_registered_under(self) -> None:
        order = make_order(policy=Policy(protection_after_delivery_days=3),
                           delivered_at=DELIVERED)  # fmt: skip
        assert order.protection_ends_at == DELIVERED + timedelta(days=3)


class TestSellerExtendsProtection:
    def test_each_extension_is_an_event_saying_who_how_many_days_and_why(self) -> None:
        order = make_order()
        order.collect_events()
        order.extend_protection(ctx(SELLER, correlation_id="req-x"), 10, "Parcel delayed")
        [event] = order.collect_events()
        assert (event.actor_role, event.actor_id, event.correlation_id) == (
            "seller", SELLER.id, "req-x",
        )  # fmt: skip
        assert (event.days, event.reason, event.timestamp) == (10, "Parcel delayed", T0)
        assert order.protection_ends_at == PLACED + timedelta(days=70)

    def test_extensions_add_up_to_the_ninety_day_cap_and_no_further(self) -> None:
        order = make_order()
        order.extend_protection(ctx(SELLER), 20, "Delayed")
        order.extend_protection(ctx(SELLER), 10, "Still delayed")
        assert order.protection_ends_at == order.protection_cap == PLACED + timedelta(days=90)
        with pytest.raises(InvalidInput) as refused:
            order.extend_protection(ctx(SELLER), 1, "More")
        assert (refused.value.field, refused.value.rule) == ("days", "within_protection_cap")

    def test_an_extension_beyond_the_cap_is_refused_and_says_how_much_room_is_left(
        self,
    ) -> None:
        order = make_order()
        with pytest.raises(InvalidInput) as refused:
            order.extend_protection(ctx(SELLER), 31, "Delayed")
        assert "30" in refused.value.message
        assert order.extensions == []

    def test_an_extension_after_protection_ended_is_refused(self) -> None:
        order = make_order(delivered_at=DELIVERED)
        late = ctx(SELLER, at=DELIVERED + timedelta(days=15, seconds=1))
        with pytest.raises(ExtensionRefused):
            order.extend_protection(late, 5, "Too late")

    def test_an_extension_once_a_dispute_exists_is_refused(self) -> None:
        order = make_order()
        order.record_dispute(ctx(BUYER), "some-dispute")
        with pytest.raises(ExtensionRefused):
            order.extend_protection(ctx(SELLER), 5, "Delayed")

    @pytest.mark.parametrize("days", [0, -1, 1.5, True, "3"])
    def test_days_must_be_a_whole_number_of_at_least_one(self, days: object) -> None:
        with pytest.raises(InvalidInput) as refused:
            make_order().extend_protection(ctx(SELLER), days, "Delayed")
        assert refused.value.field == "days"

    @pytest.mark.parametrize("actor", [BUYER, AGENT, SERVICE, SYSTEM], ids=str)
    def test_only_the_seller_extends(self, actor: object) -> None:
        with pytest.raises(RoleNotPermitted):
            make_order().extend_protection(ctx(actor), 5, "Delayed")  # type: ignore[arg-type]

    def test_an_order_is_visible_to_its_parties_and_staff_only(self) -> None:
        order = make_order()
        assert order.visible_to(BUYER) and order.visible_to(SELLER) and order.visible_to(AGENT)
        assert not order.visible_to(OTHER_BUYER)
