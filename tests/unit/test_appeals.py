"""Appeals: a ruling is `ruled` for the appeal window, the party it went against may appeal
once with new evidence, another agent decides (four eyes) and that ruling is final."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.dispute.application import DisputeApplication
from services.dispute.domain import Dispute, Policy, add_business_days, recommend, rules
from services.dispute.domain.errors import ActionNotAllowed, InvalidInput
from services.dispute.domain.values import Actor, Outcome

from .helpers import (
    AGENT,
    AGENT_2,
    BUYER,
    ORDER_AMOUNT,
    PHOTO,
    SELLER,
    SYSTEM,
    TRACKING,
    Case,
    ruled,
    snapshot,
    under_appeal,
    under_review,
)


def appeal_as(case: Case, actor: Actor, evidence: list[dict[str, str]] | None = None) -> None:
    case.dispute.file_appeal(
        case.by(actor), reason="The photos show another parcel", evidence=evidence or [PHOTO]
    )


class TestTheAppealWindow:
    def test_a_ruling_is_on_the_record_and_final_after_three_days_by_default(self) -> None:
        case = ruled("full_refund")
        assert case.state == rules.RULED
        ruling = case.dispute.ruling
        assert ruling is not None
        assert (ruling.decision, ruling.amount, ruling.agent_id) == (
            "full_refund", ORDER_AMOUNT, AGENT.id,
        )  # fmt: skip
        assert ruling.final_at == case.at + timedelta(days=3)
        assert [d.as_dict() for d in case.dispute.deadlines] == [
            {"kind": "appeal_window", "due_from": "seller", "due_at": case.at + timedelta(days=3)}
        ]
        assert case.dispute.refund is None and case.dispute.resolution is None

    @pytest.mark.parametrize(
        ("decision", "amount", "due_from"),
        [
            ("full_refund", None, "seller"),
            ("return_and_refund", None, "seller"),
            ("seller_favoured", None, "buyer"),
            ("partial_refund", 2_500, "parties"),
        ],
    )
    def test_the_window_is_due_from_the_party_the_ruling_went_against(
        self, decision: str, amount: int | None, due_from: str
    ) -> None:
        case = ruled(decision, amount)
        assert case.dispute.deadlines[0].due_from == due_from

    @pytest.mark.parametrize(
        ("decision", "amount", "state", "refund"),
        [
            ("full_refund", None, rules.REFUND_PENDING, ORDER_AMOUNT),
            ("partial_refund", 2_500, rules.REFUND_PENDING, 2_500),
            ("return_and_refund", None, rules.AWAITING_RETURN, None),
            ("seller_favoured", None, rules.CLOSED, None),
        ],
    )
    def test_when_the_window_lapses_the_ruling_takes_effect(
        self, decision: str, amount: int | None, state: str, refund: int | None
    ) -> None:
        case = ruled(decision, amount)
        case.later(days=3)
        assert case.dispute.due_timeouts(case.at) == ["appeal_window_timeout"]
        case.dispute.fire_timeout(case.by(SYSTEM), "appeal_window_timeout")
        assert case.state == state
        assert getattr(case.dispute.refund, "amount", None) == refund
        assert case.dispute.ruling is not None and case.dispute.ruling.final_at == case.at
        assert case.dispute.resolution is not None
        assert case.dispute.resolution.via == "appeal_window_timeout"
        if decision == "seller_favoured":
            assert case.dispute.outcome == Outcome.SELLER_FAVOURED

    def test_return_shipping_follows_the_ruling_when_it_takes_effect(self) -> None:
        case = under_review(reason="damaged")
        case.dispute.rule(case.later(hours=1).by(AGENT), decision="return_and_refund",
                          return_shipping_paid_by="buyer", rationale="Both at fault")  # fmt: skip
        case.dispute.fire_timeout(case.later(days=3).by(SYSTEM), "appeal_window_timeout")
        assert case.dispute.return_shipment is not None
        assert case.dispute.return_shipment.shipping_paid_by == "buyer"

    def test_a_window_of_zero_turns_appeals_off(self) -> None:
        case = under_review(policy=Policy(appeal_window_days=0))
        case.dispute.rule(case.later(hours=1).by(AGENT), decision="full_refund", rationale="x")
        assert case.state == rules.REFUND_PENDING
        assert case.dispute.ruling is not None and case.dispute.ruling.final_at == case.at

    def test_the_policy_a_dispute_was_opened_under_decides_its_window(self) -> None:
        case = ruled(policy=Policy(appeal_window_days=7))
        assert case.dispute.deadlines[0].due_at == case.at + timedelta(days=7)

    def test_an_agent_may_extend_the_window(self) -> None:
        case = ruled()
        until = case.dispute.deadlines[0].due_at + timedelta(days=2)
        case.dispute.extend_deadline(
            case.later(hours=1).by(AGENT), deadline="appeal_window", until=until, reason="Holiday"
        )
        assert case.dispute.due_timeouts(case.later(days=3).at) == []
        appeal_as(case, SELLER)  # still inside the extended window
        assert case.state == rules.UNDER_APPEAL

    def test_the_buyer_may_still_withdraw(self) -> None:
        case = ruled("seller_favoured")
        case.dispute.withdraw(case.later(hours=1).by(BUYER), reason="Not worth it")
        assert (case.state, case.dispute.outcome) == (rules.CLOSED, Outcome.WITHDRAWN)


class TestFilingAnAppeal:
    @pytest.mark.parametrize(
        ("decision", "amount", "appellant"),
        [
            ("full_refund", None, SELLER),
            ("return_and_refund", None, SELLER),
            ("seller_favoured", None, BUYER),
            ("partial_refund", 2_500, BUYER),
            ("partial_refund", 2_500, SELLER),
        ],
        ids=lambda v: getattr(v, "id", v),
    )
    def test_the_party_the_ruling_went_against_appeals(
        self, decision: str, amount: int | None, appellant: Actor
    ) -> None:
        case = ruled(decision, amount)
        appeal_as(case.later(days=1), appellant, [PHOTO, TRACKING])
        assert case.state == rules.UNDER_APPEAL
        appeal = case.dispute.appeal
        assert appeal is not None
        assert (appeal.by, appeal.by_id, appeal.at) == (
            appellant.role, appellant.id, case.at,
        )  # fmt: skip
        assert appeal.first_ruling.decision == decision
        assert case.dispute.ruling is not None and case.dispute.ruling.final_at is None
        assert [e["added_by"] for e in case.dispute.evidence[-2:]] == [appellant.role] * 2

    @pytest.mark.parametrize(
        ("decision", "amount", "appellant"),
        [("full_refund", None, BUYER), ("seller_favoured", None, SELLER),
         ("return_and_refund", None, BUYER)],
        ids=lambda v: getattr(v, "id", v),
    )  # fmt: skip
    def test_the_party_the_ruling_favoured_may_not(
        self, decision: str, amount: int | None, appellant: Actor
    ) -> None:
        case = ruled(decision, amount)
        before = snapshot(case.dispute)
        with pytest.raises(ActionNotAllowed) as refused:
            appeal_as(case.later(hours=1), appellant)
        assert f"did not go against the {appellant.role}" in refused.value.message
        assert "appeal" not in refused.value.allowed
        assert snapshot(case.dispute) == before

    def test_an_appeal_after_the_window_is_refused_even_before_the_worker_fires(self) -> None:
        case = ruled()
        with pytest.raises(ActionNotAllowed) as refused:
            appeal_as(case.later(days=3), SELLER)
        assert "appeal window has ended" in refused.value.message

    def test_an_appeal_needs_new_evidence_and_a_reason(self) -> None:
        case = ruled()
        with pytest.raises(InvalidInput) as refused:
            case.dispute.file_appeal(case.by(SELLER), reason="Unfair", evidence=[])
        assert (refused.value.field, refused.value.rule) == ("evidence", "min_items")
        with pytest.raises(InvalidInput) as refused:
            case.dispute.file_appeal(case.by(SELLER), reason="", evidence=[PHOTO])
        assert refused.value.field == "reason"

    def test_the_appeal_ruling_is_due_in_seven_business_days_an_sla(self) -> None:
        case = under_appeal()
        assert [d.as_dict() for d in case.dispute.deadlines] == [
            {"kind": "appeal_ruling", "due_from": "agent",
             "due_at": add_business_days(case.at, 7)},
        ]  # fmt: skip
        assert rules.DEADLINES["appeal_ruling"] is None  # not a time-out
        assert case.dispute.due_timeouts(case.later(days=60).at) == []

    def test_a_dispute_has_one_appeal_window_a_later_ruling_is_final_at_once(self) -> None:
        case = ruled("return_and_refund")
        case.dispute.fire_timeout(case.later(days=3).by(SYSTEM), "appeal_window_timeout")
        case.dispute.ship_return(case.later(hours=1).by(BUYER), carrier="UPS", tracking_number="1")
        case.dispute.contest_return(case.later(days=1).by(SELLER), reason="Box was empty")
        assert case.state == rules.UNDER_REVIEW
        case.dispute.rule(case.later(days=1).by(AGENT), decision="seller_favoured",
                          rationale="Empty box on camera")  # fmt: skip
        assert (case.state, case.dispute.outcome) == (rules.CLOSED, Outcome.SELLER_FAVOURED)

    def test_after_an_appeal_a_later_ruling_is_final_at_once(self) -> None:
        case = under_appeal("return_and_refund")
        case.dispute.rule(case.later(days=1).by(AGENT_2), decision="return_and_refund",
                          rationale="Upheld")  # fmt: skip
        case.dispute.ship_return(case.later(hours=1).by(BUYER), carrier="UPS", tracking_number="1")
        case.dispute.contest_return(case.later(days=1).by(SELLER), reason="Box was empty")
        case.dispute.rule(case.later(days=1).by(AGENT), decision="partial_refund", amount=1_000,
                          rationale="Half of it came back")  # fmt: skip
        assert case.state == rules.REFUND_PENDING
        assert case.dispute.appeal is not None and case.dispute.appeal.decided_by == AGENT_2.id

    def test_a_ruling_is_appealed_once(self) -> None:
        case = under_appeal("partial_refund", 2_500, appellant=SELLER)
        with pytest.raises(ActionNotAllowed) as refused:
            appeal_as(case.later(hours=1), BUYER)
        assert "appealed once" in refused.value.message


class TestDecidingTheAppeal:
    def test_the_agent_who_ruled_first_may_not_decide_it(self) -> None:
        case = under_appeal()
        before = snapshot(case.dispute)
        with pytest.raises(ActionNotAllowed) as refused:
            case.dispute.rule(case.later(hours=1).by(AGENT), decision="seller_favoured",
                              rationale="I stand by it")  # fmt: skip
        assert "other than the one who ruled first" in refused.value.message
        assert "rule" not in refused.value.allowed
        assert "rule" not in case.dispute.allowed_actions(AGENT)
        assert "rule" in case.dispute.allowed_actions(AGENT_2)
        assert snapshot(case.dispute) == before

    def test_another_agent_overturns_and_it_is_final_at_once(self) -> None:
        case = under_appeal("full_refund")
        case.dispute.rule(case.later(days=2).by(AGENT_2), decision="seller_favoured",
                          rationale="The new photos show the item intact")  # fmt: skip
        assert (case.state, case.dispute.outcome) == (rules.CLOSED, Outcome.SELLER_FAVOURED)
        appeal = case.dispute.appeal
        assert appeal is not None
        assert (appeal.decided_at, appeal.decided_by, appeal.overturned) == (
            case.at, AGENT_2.id, True,
        )  # fmt: skip
        ruling = case.dispute.ruling
        assert ruling is not None
        assert (ruling.decision, ruling.agent_id, ruling.final_at) == (
            "seller_favoured", AGENT_2.id, case.at,
        )  # fmt: skip
        assert case.dispute.deadlines == []

    def test_an_upheld_ruling_takes_effect(self) -> None:
        case = under_appeal("full_refund")
        case.dispute.rule(case.later(days=1).by(AGENT_2), decision="full_refund", rationale="x")
        assert case.state == rules.REFUND_PENDING
        assert case.dispute.appeal is not None and case.dispute.appeal.overturned is False

    def test_another_amount_counts_as_overturned(self) -> None:
        case = under_appeal("partial_refund", 2_500, appellant=BUYER)
        case.dispute.rule(case.later(days=1).by(AGENT_2), decision="partial_refund",
                          amount=6_000, rationale="More")  # fmt: skip
        assert case.dispute.appeal is not None and case.dispute.appeal.overturned is True
        assert case.dispute.refund is not None and case.dispute.refund.amount == 6_000

    def test_the_appeal_agent_may_ask_a_party_for_information(self) -> None:
        case = under_appeal()
        case.dispute.request_info(case.later(hours=1).by(AGENT_2), from_="seller",
                                  question="Where was it photographed?")  # fmt: skip
        case.dispute.post_message(case.later(hours=2).by(SELLER), body="In the warehouse")
        assert case.dispute.info_requests[-1]["status"] == "answered"


class TestTheRecommendationForAnAppeal:
    def test_it_is_shown_again_with_the_appeal_and_says_whether_the_ruling_differs(
        self,
    ) -> None:
        case = ruled("seller_favoured", reason="wrong_item")
        assert recommend(case.dispute).differs_from_ruling is True  # photos: full refund
        appeal_as(case.later(hours=1), BUYER)
        rec = recommend(case.dispute)
        assert rec.basis.startswith("appeal by the buyer: ")
        assert (rec.decision, rec.differs_from_ruling) == ("full_refund", True)

    def test_no_clear_case_says_nothing_about_the_ruling(self) -> None:
        case = ruled("full_refund", reason="late_delivery", evidence=())
        assert recommend(case.dispute).differs_from_ruling is None


# Histories recorded before appeals existed -------------------------------------------

FIXTURE = Path(__file__).parent / "fixtures" / "histories_before_appeals.json"
MAPPER = DisputeApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper


def stored(records: list[dict[str, Any]], dispute_id: str) -> list[Any]:
    """Stored events exactly as the code before appeals wrote them (commit 0e056d1)."""
    from uuid import UUID

    from eventsourcing.persistence import StoredEvent

    return [
        StoredEvent(
            originator_id=UUID(dispute_id),
            originator_version=r["version"],
            topic=r["topic"],
            state=r["state"].encode(),
        )
        for r in records
    ]


def old(name: str) -> tuple[list[Any], Any]:
    data = json.loads(FIXTURE.read_text())
    events = [MAPPER.to_domain_event(s) for s in stored(data[name], data[name + "_id"])]
    [snap] = stored([data[name + "_snapshot"]], data[name + "_id"])
    return events, MAPPER.to_domain_event(snap)


class TestHistoriesRecordedBeforeAppeals:
    def test_a_dispute_ruled_before_keeps_the_state_it_reached(self) -> None:
        events, snap = old("ruled")
        assert type(events[-1]).__qualname__ == "Dispute.Ruled"
        dispute: Dispute = None  # type: ignore[assignment]
        for event in events:
            dispute = event.mutate(dispute)
        assert dispute.state == rules.REFUND_PENDING
        assert dispute.refund is not None and dispute.refund.amount == 2_500
        assert dispute.appeal is None and dispute.chargeback is None
        assert dispute.ruling is not None and dispute.ruling.final_at == dispute.ruling.at
        assert "appeal" not in dispute.allowed_actions(BUYER)
        from_snapshot = snap.mutate(None)
        assert from_snapshot.state == rules.REFUND_PENDING
        assert from_snapshot.appeal is None  # absent from the old snapshot: the default

    def test_a_dispute_opened_before_is_ruled_at_once_as_it_was_then(self) -> None:
        events, snap = old("under_review")
        for dispute in (snap.mutate(None), _replay(events)):
            assert dispute.state == rules.UNDER_REVIEW
            assert dispute.policy.appeal_window_days == 0  # none recorded: appeals off
            at = dispute.deadlines[0].due_at - timedelta(days=1)
            dispute.rule(
                Case(dispute, None, at).by(AGENT),  # type: ignore[arg-type]
                decision="full_refund", rationale="x",
            )  # fmt: skip
            assert dispute.state == rules.REFUND_PENDING


def _replay(events: list[Any]) -> Any:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate
