"""Opening a dispute: who may, when, about what, and what it records."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from services.dispute.domain import Dispute, Policy, dispute_id, rules
from services.dispute.domain.errors import (
    DisputeAlreadyExists,
    InvalidInput,
    OrderNotFound,
    ProtectionEnded,
    ReasonNotCovered,
    RoleNotPermitted,
)
from services.dispute.domain.values import QUALITY_REASONS, Actor, Reason
from shared.money import Money

from .helpers import (
    AGENT,
    BUYER,
    DOCUMENT,
    OTHER_BUYER,
    PHOTO,
    SELLER,
    T0,
    TRACKING,
    VIDEO,
    ctx,
    make_order,
    open_case,
)

PLACED = T0 - timedelta(days=10)


def open_on(order: Any, actor: Actor = BUYER, at: Any = T0, **overrides: Any) -> Dispute:
    args: dict[str, Any] = {
        "reason": "damaged",
        "requested_resolution": "refund_only",
        "amount": Money(order.amount, order.currency),
        "description": "Broken screen",
        "evidence": [PHOTO],
        "policy": Policy(),
    }
    args.update(overrides)
    return Dispute.open(ctx(actor, at), order, **args)


def refused_input(**overrides: Any) -> InvalidInput:
    with pytest.raises(InvalidInput) as refused:
        open_on(make_order(), **overrides)
    return refused.value


class TestWhoMayOpen:
    @pytest.mark.parametrize("actor", [SELLER, AGENT], ids=str)
    def test_only_a_buyer_opens_a_dispute(self, actor: Actor) -> None:
        with pytest.raises(RoleNotPermitted):
            open_on(make_order(), actor)

    def test_another_buyer_is_told_the_order_does_not_exist(self) -> None:
        with pytest.raises(OrderNotFound):
            open_on(make_order(), OTHER_BUYER)


class TestOneDisputePerOrderEver:
    def test_a_second_dispute_for_the_order_is_refused(self) -> None:
        order = make_order()
        first = open_on(order)
        with pytest.raises(DisputeAlreadyExists) as refused:
            open_on(order)
        assert refused.value.dispute_id == str(first.id)

    def test_a_withdrawn_dispute_cannot_be_reopened(self) -> None:
        case = open_case()
        case.dispute.withdraw(case.later(hours=1).by(BUYER), reason="Changed plans")
        with pytest.raises(DisputeAlreadyExists):
            open_on(case.order, at=case.at)

    def test_the_dispute_id_is_derived_from_the_order(self) -> None:
        case = open_case()
        assert case.dispute.id == dispute_id("order-1") == Dispute.create_id("order-1")
        assert case.order.dispute_id == str(case.dispute.id)


class TestProtectionWindowAtOpening:
    def test_opening_at_the_last_moment_of_protection_is_allowed(self) -> None:
        order = make_order(delivered_at=T0)
        assert open_on(order, at=T0 + timedelta(days=15)).state == rules.AWAITING_SELLER

    def test_opening_after_protection_ended_is_refused_naming_the_end(self) -> None:
        order = make_order(delivered_at=T0)
        with pytest.raises(ProtectionEnded) as refused:
            open_on(order, at=T0 + timedelta(days=15, seconds=1))
        assert refused.value.ended_at == T0 + timedelta(days=15)
        assert refused.value.ended_at.isoformat() in refused.value.message
        assert order.dispute_id is None

    def test_a_seller_extension_lets_a_delayed_parcel_be_disputed_later(self) -> None:
        order = make_order()
        end = PLACED + timedelta(days=60)
        order.extend_protection(ctx(SELLER), 7, "Customs delay")
        assert open_on(order, at=end + timedelta(days=7)).state == rules.AWAITING_SELLER

    def test_once_open_the_protection_clock_no_longer_matters(self) -> None:
        case = open_case(delivered_at=T0)
        case.later(days=40)
        case.dispute.reject(case.by(SELLER), reason="Not broken")
        assert case.state == rules.NEGOTIATING


class TestWhatTheBuyerStates:
    @pytest.mark.parametrize("reason", ["changed_my_mind", "change_of_mind"])
    def test_changed_my_mind_is_not_covered(self, reason: str) -> None:
        refused = refused_input(reason=reason)
        assert isinstance(refused, ReasonNotCovered)
        assert (refused.field, refused.rule) == ("reason", "not_covered")

    @pytest.mark.parametrize(
        ("overrides", "field", "rule"),
        [
            ({"reason": "too_expensive"}, "reason", "one_of"),
            ({"requested_resolution": "store_credit"}, "requested_resolution", "one_of"),
            ({"amount": Money(0, "USD")}, "amount.amount", "minimum"),
            ({"amount": Money(10_001, "USD")}, "amount.amount", "not_above_order_amount"),
            ({"amount": Money(100, "EUR")}, "amount.currency", "order_currency"),
            ({"description": "  "}, "description", "required"),
            ({"evidence": [{"kind": "audio", "uri": "https://x/1", "sha256": "0" * 64}]},
             "evidence[0].kind", "one_of"),
            ({"evidence": [{**PHOTO, "uri": "not a uri"}]}, "evidence[0].uri", "uri"),
            ({"evidence": [PHOTO, {**VIDEO, "sha256": "ABC"}]}, "evidence[1].sha256",
             "sha256_hex"),
            ({"evidence": ["photo.jpg"]}, "evidence[0]", "object"),
        ],
    )  # fmt: skip
    def test_invalid_input_names_the_field_and_the_rule(
        self, overrides: dict[str, Any], field: str, rule: str
    ) -> None:
        refused = refused_input(**overrides)
        assert (refused.field, refused.rule) == (field, rule)

    @pytest.mark.parametrize("reason", sorted(QUALITY_REASONS))
    def test_a_quality_reason_needs_a_photo_or_video(self, reason: str) -> None:
        refused = refused_input(reason=reason, evidence=[TRACKING, DOCUMENT])
        assert (refused.field, refused.rule) == ("evidence", "photo_or_video_required")

    @pytest.mark.parametrize("proof", [PHOTO, VIDEO], ids=lambda i: i["kind"])
    @pytest.mark.parametrize("reason", sorted(QUALITY_REASONS))
    def test_a_quality_reason_with_a_photo_or_video_opens(
        self, reason: str, proof: dict[str, str]
    ) -> None:
        assert open_on(make_order(), reason=reason, evidence=[proof]).reason == reason

    @pytest.mark.parametrize("reason", sorted({*Reason} - QUALITY_REASONS))
    def test_other_reasons_open_without_any_evidence(self, reason: str) -> None:
        assert open_on(make_order(), reason=reason, evidence=[]).evidence == []

    def test_a_partial_refund_may_be_requested(self) -> None:
        dispute = open_on(make_order(), amount=Money(2_500, "USD"))
        assert dispute.requested_amount == 2_500


class TestWhatOpeningRecords:
    def test_the_seller_has_five_days_to_answer_by_default(self) -> None:
        [deadline] = open_case().dispute.deadlines
        assert deadline.kind == "seller_response"
        assert deadline.due_at == T0 + timedelta(days=5)

    def test_a_per_reason_override_sets_the_sellers_response_window(self) -> None:
        policy = Policy(seller_response_days_by_reason={"not_as_described": 15})
        slow = open_case(reason="not_as_described", policy=policy)
        usual = open_case(reason="damaged", policy=policy)
        assert slow.dispute.deadlines[0].due_at == T0 + timedelta(days=15)
        assert usual.dispute.deadlines[0].due_at == T0 + timedelta(days=5)

    def test_the_policy_in_force_is_recorded_with_the_dispute(self) -> None:
        policy = Policy(version="v-test", offer_response_days=7)
        assert open_case(policy=policy).dispute.policy == policy

    def test_the_opened_event_records_who_when_and_which_request(self) -> None:
        case = open_case()
        [opened] = case.dispute.collect_events()
        assert (opened.actor_role, opened.actor_id, opened.correlation_id) == (
            "buyer", BUYER.id, "req-1",
        )  # fmt: skip
        assert opened.timestamp == T0 == case.dispute.opened_at
        [recorded] = case.order.collect_events()[-1:]
        assert recorded.dispute_id == str(case.dispute.id)
        assert (recorded.actor_id, recorded.timestamp) == (BUYER.id, T0)

    def test_order_facts_are_copied_so_later_order_changes_do_not_rewrite_the_dispute(
        self,
    ) -> None:
        dispute = open_case(payment_method="wallet").dispute
        assert (dispute.order_amount, dispute.currency) == (10_000, "USD")
        assert (dispute.payment_method, dispute.buyer_id, dispute.seller_id) == (
            "wallet", BUYER.id, SELLER.id,
        )  # fmt: skip

    def test_evidence_is_stored_as_references_marked_with_who_added_it(self) -> None:
        [stored] = open_case().dispute.evidence
        assert stored == {**PHOTO, "added_by": "buyer", "at": T0}
