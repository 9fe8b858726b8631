"""Random command sequences by every role, with clock moves and time-outs, must keep the
dispute's invariants: closed is terminal, money never exceeds the order, a refusal changes
nothing, every change is one event, and the events (raw, through the stored-event mapper,
or via a snapshot) rebuild the live aggregate."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

import hypothesis.strategies as st
from hypothesis import event as note_event
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from services.dispute.application import DisputeApplication
from services.dispute.domain import Dispute, DomainError, Policy, rules
from services.dispute.domain.errors import (
    ActionNotAllowed,
    DisputeNotFound,
    InvalidInput,
    RoleNotPermitted,
)
from services.dispute.domain.values import Actor, Reason
from shared.money import Money

from .helpers import (
    AGENT,
    AGENT_2,
    ALL_ACTORS,
    BUYER,
    ORDER_AMOUNT,
    PHOTO,
    SELLER,
    SERVICE,
    SYSTEM,
    T0,
    TRACKING,
    Case,
    awaiting_return,
    buyers_turn,
    closed,
    offer_in_review,
    open_case,
    refund_pending,
    return_delivered,
    return_in_transit,
    ruled,
    sellers_turn,
    snapshot,
    under_appeal,
    under_review,
    with_offer,
)

# The Dispute's command method of each action trigger, called here directly with drawn
# (possibly invalid) values: the domain's own checks, without the typed commands.
METHODS = {
    "accept": "accept", "reject": "reject", "offer": "offer", "accept_offer": "accept_offer",
    "revise": "revise", "escalate": "escalate", "withdraw": "withdraw",
    "evidence": "add_evidence", "messages": "post_message", "request_info": "request_info",
    "rule": "rule", "appeal": "file_appeal", "ship_return": "ship_return",
    "return_delivered": "return_delivered", "confirm_return": "confirm_return",
    "contest_return": "contest_return", "refund_paid": "refund_paid",
    "refund_failed": "refund_failed", "extend_deadline": "extend_deadline",
}  # fmt: skip


class In:
    """A time relative to the clock at the moment the command runs."""

    def __init__(self, **delta: float) -> None:
        self.delta = timedelta(**delta)

    def __repr__(self) -> str:
        return f"In({self.delta})"


AMOUNTS = [None, 0, 1, 4_000, ORDER_AMOUNT - 1, ORDER_AMOUNT, ORDER_AMOUNT + 1, "5",
           Money(4_000, "USD"), Money(4_000, "EUR")]  # fmt: skip
TEXT = ["ok", ""]
TIMES = [In(), In(days=-1), In(hours=1), In(days=2), In(days=12)]


def combos(**choices: list[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({k: st.sampled_from(v) for k, v in choices.items()})


ARGS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "accept": st.just({}),
    "reject": combos(reason=TEXT, evidence=[[], [PHOTO], [{"kind": "photo"}]]),
    "offer": combos(type=["full_refund", "partial_refund", "return_and_refund", "replacement",
                          "voucher"], amount=AMOUNTS, message=[None, "m"]),
    "accept_offer": st.just({}),
    "revise": combos(requested_resolution=["refund_only", "return_and_refund", "nope"],
                     amount=AMOUNTS[1:]),
    "escalate": combos(reason=TEXT),
    "withdraw": combos(reason=TEXT),
    "evidence": combos(evidence=[[PHOTO], [TRACKING, PHOTO], [], [{"kind": "photo"}]]),
    "messages": combos(body=TEXT),
    "request_info": combos(from_=["buyer", "seller", "agent"], question=TEXT,
                           due_at=[None, *TIMES]),
    "appeal": combos(reason=TEXT, evidence=[[], [PHOTO], [{"kind": "photo"}]]),
    "rule": combos(decision=["full_refund", "partial_refund", "return_and_refund",
                             "seller_favoured", "split"], amount=AMOUNTS,
                   return_shipping_paid_by=[None, "buyer", "seller", "agent"],
                   rationale=["because", ""]),
    "ship_return": combos(carrier=["DHL", ""], tracking_number=["JD1"]),
    "return_delivered": combos(delivered_at=TIMES),
    "confirm_return": st.just({}),
    "contest_return": combos(reason=TEXT, evidence=[[], [PHOTO]]),
    "refund_paid": combos(reference=["PAY-1", ""], paid_at=TIMES),
    "refund_failed": combos(reason=TEXT),
    "extend_deadline": combos(
        deadline=["seller_response", "buyer_response", "ruling", "return_shipment",
                  "return_confirmation", "info_request_buyer", "refund_payout", "bogus"],
        until=TIMES, reason=TEXT),
}  # fmt: skip

# Arguments that pass validation (most of the time), to take the lifecycle deep.
VALID: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    **{t: st.just({}) for t in ("accept", "accept_offer", "confirm_return")},
    "reject": combos(reason=["ok"], evidence=[[], [PHOTO]]),
    "offer": st.sampled_from([{"type": "full_refund"}, {"type": "replacement"},
                              {"type": "partial_refund", "amount": 4_000},
                              {"type": "return_and_refund", "amount": 5_000}]),
    "revise": combos(requested_resolution=["refund_only", "return_and_refund"],
                     amount=[1, 6_000, ORDER_AMOUNT]),
    "escalate": st.just({"reason": "ok"}),
    "appeal": st.just({"reason": "new photos", "evidence": [PHOTO]}),
    "withdraw": st.just({"reason": "ok"}),
    "evidence": st.just({"evidence": [PHOTO]}),
    "messages": st.just({"body": "ok"}),
    "request_info": combos(from_=["buyer", "seller"], question=["?"], due_at=[None, In(days=2)]),
    "rule": st.sampled_from([{"decision": "full_refund"}, {"decision": "seller_favoured"},
                             {"decision": "partial_refund", "amount": 2_500},
                             {"decision": "return_and_refund"},
                             {"decision": "return_and_refund", "return_shipping_paid_by": "buyer"}]
                            ).map(lambda a: {**a, "rationale": "because"}),
    "ship_return": st.just({"carrier": "DHL", "tracking_number": "JD1"}),
    "return_delivered": st.just({"delivered_at": In()}),
    "contest_return": st.just({"reason": "empty box", "evidence": [PHOTO]}),
    "refund_paid": st.just({"reference": "PAY-1", "paid_at": In()}),
    "refund_failed": st.just({"reason": "bank down"}),
    "extend_deadline": st.just({"until": In(days=20), "reason": "ok"}),
}  # fmt: skip
PARTICIPANTS = [BUYER, SELLER, AGENT, AGENT_2, SERVICE]
STARTS = {
    "buyers_turn": buyers_turn,
    "sellers_turn": sellers_turn,
    "with_offer": with_offer,
    "under_review": under_review,
    "offer_in_review": offer_in_review,
    "ruled": ruled,
    "ruled_for_the_seller": lambda **kw: ruled("seller_favoured", **kw),
    "under_appeal": under_appeal,
    "awaiting_return": awaiting_return,
    "return_in_transit": return_in_transit,
    "return_delivered": return_delivered,
    "refund_pending": refund_pending,
    "closed": closed,
}

MAPPER = DisputeApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper


def through_mapper(event: Any) -> Any:
    return MAPPER.to_domain_event(MAPPER.to_stored_event(event))


def state_of(dispute: Dispute) -> dict[str, Any]:
    return {k: v for k, v in vars(dispute).items() if k != "_pending_events"}


class DisputeLifecycle(RuleBasedStateMachine):
    case: Case

    @initialize(
        reason=st.sampled_from(sorted(Reason)),
        resolution=st.sampled_from(["refund_only", "return_and_refund"]),
        amount=st.sampled_from([1, 2_500, ORDER_AMOUNT - 1, ORDER_AMOUNT]),
        method=st.sampled_from(["card", "wallet", "other"]),
        slow_reason=st.booleans(),
        appeal_window=st.sampled_from([0, 3]),
        start=st.sampled_from(["open", *STARTS]),
    )
    def open(self, reason: str, resolution: str, amount: int, method: str,
             slow_reason: bool, appeal_window: int, start: str) -> None:  # fmt: skip
        """A new dispute, or one already brought to a later stage (so that short runs
        reach every state), with all of its events so far."""
        policy = Policy(seller_response_days_by_reason={reason: 12} if slow_reason else {},
                        appeal_window_days=appeal_window)  # fmt: skip
        if reason == Reason.NOT_SHIPPED:  # cancelling before shipment: full refund only
            resolution, amount, start = "refund_only", ORDER_AMOUNT, "open"
        if start in ("ruled", "ruled_for_the_seller", "under_appeal"):
            policy = Policy(appeal_window_days=3)  # these stages exist only with appeals on
        if start == "open":
            self.case = open_case(
                reason=reason,
                resolution=resolution,
                amount=amount,
                payment_method=method,
                policy=policy,
                evidence=() if reason == Reason.NOT_SHIPPED else (PHOTO,),
            )
        else:
            self.case = STARTS[start](reason=reason, payment_method=method, policy=policy)
        self.events: list[Any] = self.case.dispute.collect_events()
        self.replayed: Any = None
        self.via_mapper: Any = None
        self._follow(self.events)
        self.closed_state: dict[str, Any] | None = None

    # Rules -----------------------------------------------------------------------------

    @rule(
        delta=st.sampled_from(
            [
                timedelta(minutes=1),
                timedelta(hours=5),
                timedelta(days=1),
                timedelta(days=3),
                timedelta(days=5),
                timedelta(days=11),
            ]
        )
    )
    def advance_the_clock(self, delta: timedelta) -> None:  # fmt: skip
        self.case.at += delta

    @rule(actor=st.sampled_from(ALL_ACTORS), data=st.data(),
          trigger=st.sampled_from(rules.ACTION_TRIGGERS))  # fmt: skip
    def act(self, actor: Actor, trigger: str, data: st.DataObject) -> None:
        args = {k: self._resolve(v) for k, v in data.draw(ARGS[trigger]).items()}
        now = self.case.at
        allowed = rules.action_name(trigger) in self.case.dispute.allowed_actions(actor, now)
        method = getattr(self.case.dispute, METHODS[trigger])
        error = self._attempt(lambda: method(self.case.by(actor), **args))
        if allowed:  # the table said yes: only the input may be refused
            assert error is None or isinstance(error, InvalidInput), error
        else:
            assert isinstance(error, RoleNotPermitted | ActionNotAllowed | DisputeNotFound)
        if not self.case.dispute.visible_to(actor):
            assert isinstance(error, DisputeNotFound)

    @rule(actor=st.sampled_from(PARTICIPANTS), data=st.data())
    def take_an_allowed_action(self, actor: Actor, data: st.DataObject) -> None:
        dispute = self.case.dispute
        allowed = dispute.allowed_actions(actor, self.case.at)
        if not allowed:
            return
        trigger = rules.trigger_for(data.draw(st.sampled_from(allowed)))
        assert trigger is not None
        args = {k: self._resolve(v) for k, v in data.draw(VALID[trigger]).items()}
        if trigger == "extend_deadline":
            kinds = [d.kind for d in dispute.deadlines if d.kind != "refund_payout"]
            args["deadline"] = data.draw(st.sampled_from(kinds))
        method = getattr(dispute, METHODS[trigger])
        error = self._attempt(lambda: method(self.case.by(actor), **args))
        assert error is None or isinstance(error, InvalidInput), error

    @rule(actor=st.sampled_from([SYSTEM, SYSTEM, SYSTEM, BUYER]),
          trigger=st.sampled_from(rules.TIMEOUT_TRIGGERS))  # fmt: skip
    def fire_a_time_out(self, actor: Actor, trigger: str) -> None:
        due = trigger in self.case.dispute.due_timeouts(self.case.at)
        error = self._attempt(lambda: self.case.dispute.fire_timeout(self.case.by(actor), trigger))
        assert (error is None) == (due and actor == SYSTEM), (trigger, error)

    @rule(actor=st.sampled_from([SERVICE, BUYER, AGENT, SYSTEM]))
    def report_a_chargeback(self, actor: Actor) -> None:
        """The payments service reports a chargeback on the order: any open dispute closes."""
        was_open = self.case.dispute.state != rules.CLOSED
        error = self._attempt(
            lambda: self.case.dispute.close_by_chargeback(
                self.case.by(actor), reference="CB-1", amount=ORDER_AMOUNT
            )
        )
        assert (error is None) == (was_open and actor == SERVICE), error
        if error is None:
            assert self.case.dispute.outcome == "chargeback"

    @rule()
    def fire_every_due_time_out(self) -> None:
        for trigger in self.case.dispute.due_timeouts(self.case.at):
            if trigger in self.case.dispute.due_timeouts(self.case.at):
                error = self._attempt(
                    lambda t=trigger: self.case.dispute.fire_timeout(self.case.by(SYSTEM), t)
                )
                assert error is None, error

    # Invariants ------------------------------------------------------------------------

    @invariant()
    def count_the_states_reached(self) -> None:
        note_event(f"reached {self.case.dispute.state}")  # see --hypothesis-show-statistics

    @invariant()
    def closed_is_terminal(self) -> None:
        dispute = self.case.dispute
        if self.closed_state is not None:
            assert dispute.state == rules.CLOSED
            assert state_of(dispute) == self.closed_state
        elif dispute.state == rules.CLOSED:
            self.closed_state = copy.deepcopy(state_of(dispute))
            assert dispute.outcome is not None and dispute.deadlines == []

    @invariant()
    def an_appeal_is_filed_once_and_decided_by_another_agent(self) -> None:
        d = self.case.dispute
        appeals = [e for e in self.events if isinstance(e, Dispute.Appealed)]
        windows = [e for e in self.events if isinstance(e, Dispute.RulingIssued)]
        assert len(appeals) <= len(windows) <= 1
        if d.appeal is not None:
            first = d.appeal.first_ruling
            assert d.appeal.by in rules.APPEALABLE_BY[first.decision]
            if d.appeal.decided_by is not None:
                assert d.appeal.decided_by != first.agent_id
                assert d.ruling is not None and d.ruling.agent_id == d.appeal.decided_by
        if d.state == rules.RULED:
            assert d.ruling is not None and d.ruling.final_at is not None
            assert [k.kind for k in d.deadlines] == ["appeal_window"]

    @invariant()
    def no_refund_is_paid_once_charged_back(self) -> None:
        d = self.case.dispute
        if d.outcome == "chargeback":
            assert d.state == rules.CLOSED and getattr(d.refund, "paid_at", None) is None

    @invariant()
    def money_never_exceeds_the_order_amount(self) -> None:
        d = self.case.dispute
        amounts = [d.requested_amount, getattr(d.refund, "amount", None),
                   getattr(d.resolution, "amount", None), getattr(d.standing_offer, "amount", None),
                   getattr(d.ruling, "amount", None)]  # fmt: skip
        assert all(a is None or 1 <= a <= d.order_amount for a in amounts), amounts
        if d.state == rules.REFUND_PENDING:
            assert d.refund is not None and d.refund.reference is None

    @invariant()
    def the_events_rebuild_the_live_aggregate(self) -> None:
        live = state_of(self.case.dispute)
        assert self.case.dispute.version == len(self.events)
        assert state_of(self.replayed) == live
        assert state_of(self.via_mapper) == live
        snapshot_event = through_mapper(Dispute.Snapshot.take(self.case.dispute))
        assert state_of(snapshot_event.mutate(None)) == live

    # Helpers ---------------------------------------------------------------------------

    def _resolve(self, value: Any) -> Any:
        return self.case.at + value.delta if isinstance(value, In) else value

    def _attempt(self, command: Any) -> DomainError | None:
        """Runs a command: refused, it changes nothing; accepted, it records one event."""
        dispute = self.case.dispute
        before, version = snapshot(dispute), dispute.version
        was_closed = dispute.state == rules.CLOSED
        try:
            command()
        except DomainError as error:
            assert snapshot(dispute) == before and dispute.version == version
            assert dispute.collect_events() == []
            return error
        assert not was_closed, "a closed dispute accepted a command"
        new = dispute.collect_events()
        assert len(new) == 1 and dispute.version == version + 1
        event = new[0]
        assert event.timestamp == self.case.at and event.correlation_id == "req-1"
        assert event.state == dispute.state
        self.events.extend(new)
        self._follow(new)
        return None

    def _follow(self, new: list[Any]) -> None:
        for event in new:
            self.replayed = event.mutate(self.replayed)
            self.via_mapper = through_mapper(event).mutate(self.via_mapper)


TestDisputeLifecycle = DisputeLifecycle.TestCase


def test_the_machine_starts_from_an_open_dispute() -> None:
    # A plain check that the builder the machine starts from is what it assumes.
    case = open_case()
    assert case.dispute.state == rules.AWAITING_SELLER and case.at == T0
