"""Deadlines: agents extend them; time-outs fire only when the table says they are due."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.dispute.domain import rules
from services.dispute.domain.errors import ActionNotAllowed, InvalidInput, RoleNotPermitted

from .helpers import (
    AGENT,
    BUYER,
    SELLER,
    SYSTEM,
    buyers_turn,
    ctx,
    open_case,
    snapshot,
    under_review,
)


class TestExtendingADeadline:
    def test_an_agent_moves_a_pending_deadline_later_and_the_time_out_follows(self) -> None:
        case = open_case()
        due = case.dispute.deadlines[0].due_at
        case.dispute.extend_deadline(
            case.later(days=1).by(AGENT),
            deadline="seller_response",
            until=due + timedelta(days=3),
            reason="Seller on holiday",
        )
        [event] = case.dispute.collect_events()[-1:]
        assert (event.previous_due_at, event.until) == (due, due + timedelta(days=3))
        assert case.dispute.due_timeouts(due) == []
        with pytest.raises(ActionNotAllowed):
            case.dispute.fire_timeout(ctx(SYSTEM, due), "seller_response_timeout")
        assert case.dispute.due_timeouts(due + timedelta(days=3)) == ["seller_response_timeout"]

    def test_a_deadline_that_is_not_pending_cannot_be_extended(self) -> None:
        case = buyers_turn()
        with pytest.raises(InvalidInput) as refused:
            case.dispute.extend_deadline(
                case.by(AGENT),
                deadline="seller_response",
                until=case.at + timedelta(days=30),
                reason="x",
            )
        assert (refused.value.field, refused.value.rule) == ("deadline", "pending_deadline")
        assert "buyer_response" in refused.value.message

    @pytest.mark.parametrize("shift", [timedelta(0), -timedelta(hours=1)])
    def test_the_new_due_time_must_be_later_than_the_current_one(self, shift: timedelta) -> None:
        case = under_review()
        due = case.dispute.deadlines[0].due_at
        before = snapshot(case.dispute)
        with pytest.raises(InvalidInput) as refused:
            case.dispute.extend_deadline(
                case.by(AGENT), deadline="ruling", until=due + shift, reason="x"
            )
        assert (refused.value.field, refused.value.rule) == ("until", "later_than_current")
        assert snapshot(case.dispute) == before

    def test_an_overdue_deadline_must_be_moved_into_the_future(self) -> None:
        case = open_case()
        due = case.dispute.deadlines[0].due_at
        case.later(days=10)
        with pytest.raises(InvalidInput):
            case.dispute.extend_deadline(
                case.by(AGENT),
                deadline="seller_response",
                until=due + timedelta(days=1),
                reason="x",
            )

    @pytest.mark.parametrize("actor", [BUYER, SELLER, SYSTEM], ids=str)
    def test_only_an_agent_extends_deadlines(self, actor: object) -> None:
        case = open_case()
        with pytest.raises(RoleNotPermitted):
            case.dispute.extend_deadline(
                case.by(actor),
                deadline="seller_response",  # type: ignore[arg-type]
                until=case.at + timedelta(days=9),
                reason="x",
            )


class TestTimeOutsFireOnlyWhenDue:
    def test_the_worker_is_told_which_time_outs_are_due_in_order(self) -> None:
        case = open_case()
        assert case.dispute.due_timeouts(case.at) == []
        assert rules.next_timeout_at(case.dispute.collect_events()[-1]) == case.at + timedelta(
            days=5
        )
        assert case.dispute.due_timeouts(case.at + timedelta(days=5)) == ["seller_response_timeout"]

    def test_a_time_out_of_another_state_is_refused_even_when_late(self) -> None:
        case = open_case()
        before = snapshot(case.dispute)
        for trigger in set(rules.TIMEOUT_TRIGGERS) - {"seller_response_timeout"}:
            with pytest.raises(ActionNotAllowed) as refused:
                case.dispute.fire_timeout(case.later(days=30).by(SYSTEM), trigger)
            assert refused.value.allowed == []
        assert snapshot(case.dispute) == before

    def test_a_buyer_cannot_fire_a_time_out(self) -> None:
        case = open_case()
        with pytest.raises(RoleNotPermitted):
            case.dispute.fire_timeout(case.later(days=30).by(BUYER), "seller_response_timeout")

    def test_the_sla_of_a_ruling_and_the_payout_date_have_no_time_out(self) -> None:
        assert rules.DEADLINES["ruling"] is None and rules.DEADLINES["refund_payout"] is None
        case = under_review()
        assert rules.next_timeout_at(case.dispute.collect_events()[-1]) is None
