"""The transition table (rules.py): every row is reachable and leads where it says, every
refusal names what is allowed, and the table is what the API and the diagram publish."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from services.dispute.domain import Dispute, guards, handlers, rules
from services.dispute.domain.errors import (
    ActionNotAllowed,
    DisputeNotFound,
    InvalidInput,
    RoleNotPermitted,
)
from services.dispute.domain.values import Actor, Context, Role

from .helpers import (
    AGENT,
    AGENT_2,
    ALL_ACTORS,
    AUDITOR,
    BUILDERS,
    BUYER,
    NO_APPEALS,
    OTHER_BUYER,
    OTHER_SELLER,
    PHOTO,
    SELLER,
    SERVICE,
    SYSTEM,
    Case,
    awaiting_return,
    buyers_turn,
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

Call = Callable[[Dispute, Context], None]


@dataclass(frozen=True)
class Pull:
    """Build a case in the row's source state, wait, and pull the trigger as `actor`."""

    build: Callable[[], Case]
    actor: Actor
    call: Call
    wait: dict[str, float] = field(default_factory=lambda: {"hours": 1})


def timeout(trigger: str) -> Call:
    return lambda d, c: d.fire_timeout(c, trigger)


def extend_first_deadline(d: Dispute, c: Context) -> None:
    first = d.deadlines[0]
    d.extend_deadline(
        c, deadline=first.kind, until=first.due_at + timedelta(days=2), reason="Strike"
    )


def evidence(d: Dispute, c: Context) -> None:
    d.add_evidence(c, evidence=[PHOTO])


def message(d: Dispute, c: Context) -> None:
    d.post_message(c, body="Any news?")


def ask_buyer(d: Dispute, c: Context) -> None:
    d.request_info(c, from_="buyer", question="Photo of the label?")


def asked_buyer() -> Case:
    case = under_review()
    ask_buyer(case.dispute, case.later(hours=1).by(AGENT))
    return case


def return_leg(reason: str = "damaged") -> Callable[[], Case]:
    return lambda: awaiting_return(reason=reason)


def no_appeals() -> Case:
    return under_review(policy=NO_APPEALS)


def ruled_as(decision: str) -> Callable[[], Case]:
    return lambda: ruled(decision)


def asked_in_appeal() -> Case:
    case = under_appeal()
    ask_buyer(case.dispute, case.later(hours=1).by(AGENT_2))
    return case


def appeal(d: Dispute, c: Context) -> None:
    d.file_appeal(c, reason="The photos were of another parcel", evidence=[PHOTO])


def chargeback(d: Dispute, c: Context) -> None:
    d.close_by_chargeback(c, reference="CB-1", amount=d.order_amount)


def rule_as(decision: str) -> Call:
    return lambda d, c: d.rule(c, decision=decision, rationale="Decided")


A, N, U = rules.AWAITING_SELLER, rules.NEGOTIATING, rules.UNDER_REVIEW
R, UA = rules.RULED, rules.UNDER_APPEAL
AR, RT, RP, C = rules.AWAITING_RETURN, rules.RETURN_IN_TRANSIT, rules.REFUND_PENDING, rules.CLOSED
DAYS_5 = {"days": 5}

SCENARIOS: dict[tuple[str, str, str], Pull] = {
    # The seller's first answer
    ("accept", A, RP): Pull(open_case, SELLER, lambda d, c: d.accept(c)),
    ("accept", A, AR): Pull(
        lambda: open_case(resolution="return_and_refund"), SELLER, lambda d, c: d.accept(c)
    ),
    ("reject", A, N): Pull(open_case, SELLER, lambda d, c: d.reject(c, reason="Not damaged")),
    ("offer", A, N): Pull(
        open_case, SELLER, lambda d, c: d.offer(c, type="partial_refund", amount=5_000)
    ),
    ("seller_response_timeout", A, RP): Pull(
        open_case, SYSTEM, timeout("seller_response_timeout"), DAYS_5
    ),
    ("seller_response_timeout", A, AR): Pull(
        lambda: open_case(resolution="return_and_refund"),
        SYSTEM,
        timeout("seller_response_timeout"),
        DAYS_5,
    ),
    ("withdraw", A, C): Pull(open_case, BUYER, lambda d, c: d.withdraw(c, reason="Arrived")),
    ("evidence", A, A): Pull(open_case, BUYER, evidence),
    ("messages", A, A): Pull(open_case, SELLER, message),
    ("extend_deadline", A, A): Pull(open_case, AGENT, extend_first_deadline),
    # Negotiation
    ("accept", N, RP): Pull(sellers_turn, SELLER, lambda d, c: d.accept(c)),
    ("accept", N, AR): Pull(
        lambda: sellers_turn(resolution="return_and_refund"), SELLER, lambda d, c: d.accept(c)
    ),
    ("reject", N, N): Pull(sellers_turn, SELLER, lambda d, c: d.reject(c, reason="Still no")),
    ("offer", N, N): Pull(
        sellers_turn, SELLER, lambda d, c: d.offer(c, type="partial_refund", amount=6_000)
    ),
    ("accept_offer", N, RP): Pull(with_offer, BUYER, lambda d, c: d.accept_offer(c)),
    ("accept_offer", N, AR): Pull(
        lambda: with_offer("return_and_refund", None), BUYER, lambda d, c: d.accept_offer(c)
    ),
    ("accept_offer", N, C): Pull(
        lambda: with_offer("replacement", None), BUYER, lambda d, c: d.accept_offer(c)
    ),
    ("revise", N, N): Pull(
        buyers_turn,
        BUYER,
        lambda d, c: d.revise(c, requested_resolution="refund_only", amount=9_000),
    ),
    ("escalate", N, U): Pull(buyers_turn, BUYER, lambda d, c: d.escalate(c, reason="Stuck")),
    ("seller_response_timeout", N, RP): Pull(
        sellers_turn, SYSTEM, timeout("seller_response_timeout"), DAYS_5
    ),
    ("seller_response_timeout", N, AR): Pull(
        lambda: sellers_turn(resolution="return_and_refund"),
        SYSTEM,
        timeout("seller_response_timeout"),
        DAYS_5,
    ),
    ("buyer_response_timeout", N, C): Pull(
        buyers_turn, SYSTEM, timeout("buyer_response_timeout"), DAYS_5
    ),
    ("withdraw", N, C): Pull(buyers_turn, BUYER, lambda d, c: d.withdraw(c, reason="Done")),
    ("evidence", N, N): Pull(buyers_turn, SELLER, evidence),
    ("messages", N, N): Pull(buyers_turn, AGENT, message),
    ("extend_deadline", N, N): Pull(buyers_turn, AGENT, extend_first_deadline),
    # Review
    ("offer", U, U): Pull(
        under_review, SELLER, lambda d, c: d.offer(c, type="partial_refund", amount=3_000)
    ),
    ("accept_offer", U, RP): Pull(offer_in_review, BUYER, lambda d, c: d.accept_offer(c)),
    ("accept_offer", U, AR): Pull(
        lambda: offer_in_review("return_and_refund", None), BUYER, lambda d, c: d.accept_offer(c)
    ),
    ("accept_offer", U, C): Pull(
        lambda: offer_in_review("replacement", None), BUYER, lambda d, c: d.accept_offer(c)
    ),
    ("request_info", U, U): Pull(under_review, AGENT, ask_buyer),
    ("info_request_timeout", U, U): Pull(
        asked_buyer, SYSTEM, timeout("info_request_timeout"), {"days": 3}
    ),
    ("rule", U, R): Pull(under_review, AGENT, rule_as("full_refund")),
    ("rule", U, RP): Pull(no_appeals, AGENT, rule_as("full_refund")),
    ("rule", U, AR): Pull(no_appeals, AGENT, rule_as("return_and_refund")),
    ("rule", U, C): Pull(no_appeals, AGENT, rule_as("seller_favoured")),
    ("evidence", U, U): Pull(under_review, BUYER, evidence),
    ("messages", U, U): Pull(under_review, BUYER, message),
    ("extend_deadline", U, U): Pull(under_review, AGENT, extend_first_deadline),
    # Ruled: the appeal window
    ("appeal", R, UA): Pull(ruled, SELLER, appeal),
    ("appeal_window_timeout", R, RP): Pull(
        ruled, SYSTEM, timeout("appeal_window_timeout"), {"days": 3}
    ),
    ("appeal_window_timeout", R, AR): Pull(
        ruled_as("return_and_refund"), SYSTEM, timeout("appeal_window_timeout"), {"days": 3}
    ),
    ("appeal_window_timeout", R, C): Pull(
        ruled_as("seller_favoured"), SYSTEM, timeout("appeal_window_timeout"), {"days": 3}
    ),
    ("withdraw", R, C): Pull(ruled, BUYER, lambda d, c: d.withdraw(c, reason="Let it go")),
    ("evidence", R, R): Pull(ruled, SELLER, evidence),
    ("messages", R, R): Pull(ruled, BUYER, message),
    ("extend_deadline", R, R): Pull(ruled, AGENT, extend_first_deadline),
    # The appeal, decided by another agent
    ("rule", UA, RP): Pull(under_appeal, AGENT_2, rule_as("full_refund")),
    ("rule", UA, AR): Pull(under_appeal, AGENT_2, rule_as("return_and_refund")),
    ("rule", UA, C): Pull(under_appeal, AGENT_2, rule_as("seller_favoured")),
    ("request_info", UA, UA): Pull(under_appeal, AGENT_2, ask_buyer),
    ("info_request_timeout", UA, UA): Pull(
        asked_in_appeal, SYSTEM, timeout("info_request_timeout"), {"days": 3}
    ),
    ("withdraw", UA, C): Pull(under_appeal, BUYER, lambda d, c: d.withdraw(c, reason="Tired")),
    ("evidence", UA, UA): Pull(under_appeal, SELLER, evidence),
    ("messages", UA, UA): Pull(under_appeal, AGENT, message),
    ("extend_deadline", UA, UA): Pull(under_appeal, AGENT_2, extend_first_deadline),
    # The return leg
    ("ship_return", AR, RT): Pull(
        return_leg(), BUYER, lambda d, c: d.ship_return(c, carrier="UPS", tracking_number="1Z")
    ),
    ("return_shipment_timeout", AR, C): Pull(
        return_leg(), SYSTEM, timeout("return_shipment_timeout"), {"days": 10}
    ),
    ("evidence", AR, AR): Pull(return_leg(), SELLER, evidence),
    ("messages", AR, AR): Pull(return_leg(), BUYER, message),
    ("extend_deadline", AR, AR): Pull(return_leg(), AGENT, extend_first_deadline),
    ("return_delivered", RT, RT): Pull(
        return_in_transit, SERVICE, lambda d, c: d.return_delivered(c, delivered_at=c.at)
    ),
    ("confirm_return", RT, RP): Pull(return_in_transit, SELLER, lambda d, c: d.confirm_return(c)),
    ("contest_return", RT, U): Pull(
        return_delivered, SELLER, lambda d, c: d.contest_return(c, reason="Box was empty")
    ),
    ("return_confirmation_timeout", RT, RP): Pull(
        return_delivered, SYSTEM, timeout("return_confirmation_timeout"), DAYS_5
    ),
    ("evidence", RT, RT): Pull(return_in_transit, BUYER, evidence),
    ("messages", RT, RT): Pull(return_in_transit, SELLER, message),
    ("extend_deadline", RT, RT): Pull(return_delivered, AGENT, extend_first_deadline),
    # The refund leg
    ("refund_paid", RP, C): Pull(
        refund_pending, SERVICE, lambda d, c: d.refund_paid(c, reference="PAY-1", paid_at=c.at)
    ),
    ("refund_failed", RP, RP): Pull(
        refund_pending, SERVICE, lambda d, c: d.refund_failed(c, reason="Card expired")
    ),
    ("messages", RP, RP): Pull(refund_pending, BUYER, message),
    # A chargeback reported on the order closes the dispute in any open state
    **{
        ("chargeback", state, C): Pull(build, SERVICE, chargeback)
        for state, build in BUILDERS.items()
        if state != C
    },
}

# Rows whose guards can never all pass: in refund_pending the only deadline is the
# expected payout date, which `has_extendable_deadline` excludes.
NEVER_PASSABLE = {("extend_deadline", RP, RP)}


def table_rows() -> set[tuple[str, str, str]]:
    return {(r["trigger"], r["source"], r["dest"]) for r in rules.describe()["transitions"]}


def test_every_row_of_the_table_has_a_scenario_here() -> None:
    assert set(SCENARIOS) | NEVER_PASSABLE == table_rows()


@pytest.mark.parametrize("row", sorted(SCENARIOS), ids="-".join)
def test_each_transition_leads_where_the_table_says_and_records_one_stamped_event(
    row: tuple[str, str, str],
) -> None:
    trigger, source, dest = row
    pull = SCENARIOS[row]
    case = pull.build()
    assert case.state == source
    case.dispute.collect_events()
    case.later(**pull.wait)

    pull.call(case.dispute, case.by(pull.actor, correlation_id=f"req-{trigger}"))

    assert case.state == dest
    [event] = case.dispute.collect_events()
    assert event.state == dest
    assert (event.actor_role, event.actor_id) == (pull.actor.role, pull.actor.id)
    assert event.correlation_id == f"req-{trigger}"
    assert event.timestamp == case.at


@pytest.mark.parametrize("row", sorted(NEVER_PASSABLE), ids="-".join)
def test_a_never_passable_row_is_refused(row: tuple[str, str, str]) -> None:
    case = refund_pending()
    with pytest.raises(ActionNotAllowed):
        extend_first_deadline(case.dispute, case.later(hours=1).by(AGENT))


@pytest.mark.parametrize(
    "row",
    sorted(r for r in SCENARIOS if r[0] in rules.TIMEOUT_TRIGGERS),
    ids="-".join,
)
def test_a_time_out_is_refused_a_minute_before_it_is_due(row: tuple[str, str, str]) -> None:
    trigger, source, _ = row
    pull = SCENARIOS[row]
    case = pull.build()
    case.later(**pull.wait).later(minutes=-1)  # the deadline is due exactly at the wait
    before = snapshot(case.dispute)

    with pytest.raises(ActionNotAllowed) as refused:
        pull.call(case.dispute, case.by(SYSTEM))

    assert refused.value.state == source
    assert snapshot(case.dispute) == before
    assert trigger not in case.dispute.due_timeouts(case.at)
    assert trigger in case.dispute.due_timeouts(case.later(minutes=1).at)


@pytest.mark.parametrize("row", sorted(SCENARIOS), ids="-".join)
def test_no_other_role_may_pull_a_trigger(row: tuple[str, str, str]) -> None:
    trigger, _, _ = row
    pull = SCENARIOS[row]
    for actor in (BUYER, SELLER, AGENT, SERVICE, AUDITOR, SYSTEM):
        if rules.role_may(trigger, actor.role) or actor.role == pull.actor.role:
            continue
        case = pull.build()
        before = snapshot(case.dispute)
        case.later(**pull.wait)
        with pytest.raises(RoleNotPermitted) as refused:
            pull.call(case.dispute, case.by(actor))
        assert refused.value.role == actor.role
        assert snapshot(case.dispute) == before


@pytest.mark.parametrize("stranger", [OTHER_BUYER, OTHER_SELLER], ids=lambda a: a.id)
@pytest.mark.parametrize("row", sorted(r for r in SCENARIOS if r[0] in ("accept", "evidence")))
def test_a_party_of_another_dispute_is_told_it_does_not_exist(
    row: tuple[str, str, str], stranger: Actor
) -> None:
    pull = SCENARIOS[row]
    case = pull.build()
    with pytest.raises(DisputeNotFound):
        pull.call(case.dispute, case.later(hours=1).by(Actor(pull.actor.role, stranger.id)))
    assert case.dispute.allowed_actions(stranger) == []


# Allowed actions -----------------------------------------------------------------------


def allowed_by_trying(case: Case, actor: Actor) -> list[str]:
    """The actions that pass the table's guards now, tried one by one on the rule book."""
    return [
        rules.action_name(t)
        for t in rules.ACTION_TRIGGERS
        if _passes_check(t, case.dispute, actor, case)
    ]


def _passes_check(trigger: str, dispute: Dispute, actor: Actor, case: Case) -> bool:
    try:
        guards.check(trigger, dispute, actor.role, case.at, actor.id)
    except (RoleNotPermitted, ActionNotAllowed):
        return False
    return True


STATE_CASES: dict[str, Callable[[], Case]] = {
    **BUILDERS,
    "negotiating (seller's turn)": sellers_turn,
    "negotiating (offer standing)": with_offer,
    "under_review (offer standing)": offer_in_review,
    "return_in_transit (delivered)": return_delivered,
    "ruled (seller favoured)": ruled_as("seller_favoured"),
    "ruled (partial refund)": lambda: ruled("partial_refund", 2_500),
}


@pytest.mark.parametrize(
    "actor", [BUYER, SELLER, AGENT, AGENT_2, SERVICE, AUDITOR, SYSTEM], ids=lambda a: a.id
)
@pytest.mark.parametrize("name", sorted(STATE_CASES))
def test_allowed_actions_are_exactly_the_actions_the_table_lets_the_role_take_now(
    name: str, actor: Actor
) -> None:
    case = STATE_CASES[name]()
    allowed = case.dispute.allowed_actions(actor)
    assert allowed == allowed_by_trying(case, actor)
    if actor.role in (Role.AUDITOR, Role.SYSTEM) or case.state == rules.CLOSED:
        assert allowed == []


@pytest.mark.parametrize(
    ("name", "actor", "expected"),
    [
        ("awaiting_seller", BUYER, ["withdraw", "evidence", "messages"]),
        ("awaiting_seller", SELLER, ["accept", "reject", "offer", "evidence", "messages"]),
        ("awaiting_seller", AGENT, ["messages", "extend-deadline"]),
        ("negotiating", BUYER, ["revise", "escalate", "withdraw", "evidence", "messages"]),
        ("negotiating", SELLER, ["evidence", "messages"]),
        ("negotiating (seller's turn)", SELLER, ["accept", "reject", "offer", "evidence",
                                                 "messages"]),
        ("negotiating (seller's turn)", BUYER, ["escalate", "withdraw", "evidence", "messages"]),
        ("negotiating (offer standing)", BUYER, ["accept-offer", "revise", "escalate",
                                                 "withdraw", "evidence", "messages"]),
        ("under_review", AGENT, ["request-info", "rule", "messages", "extend-deadline"]),
        ("under_review", SELLER, ["offer", "evidence", "messages"]),
        ("under_review", BUYER, ["evidence", "messages"]),
        ("under_review (offer standing)", BUYER, ["accept-offer", "evidence", "messages"]),
        ("awaiting_return", BUYER, ["ship-return", "evidence", "messages"]),
        ("return_in_transit", SERVICE, ["return-delivered"]),
        ("return_in_transit", SELLER, ["confirm-return", "contest-return", "evidence",
                                       "messages"]),
        ("return_in_transit (delivered)", SERVICE, []),
        ("refund_pending", SERVICE, ["refund-paid", "refund-failed"]),
        ("refund_pending", AGENT, ["messages"]),
        ("ruled", SELLER, ["appeal", "evidence", "messages"]),
        ("ruled", BUYER, ["withdraw", "evidence", "messages"]),
        ("ruled", AGENT, ["messages", "extend-deadline"]),
        ("ruled (seller favoured)", BUYER, ["withdraw", "appeal", "evidence", "messages"]),
        ("ruled (seller favoured)", SELLER, ["evidence", "messages"]),
        ("ruled (partial refund)", SELLER, ["appeal", "evidence", "messages"]),
        ("ruled (partial refund)", BUYER, ["withdraw", "appeal", "evidence", "messages"]),
        ("under_appeal", AGENT, ["request-info", "messages", "extend-deadline"]),
        ("under_appeal", AGENT_2, ["request-info", "rule", "messages", "extend-deadline"]),
        ("under_appeal", SELLER, ["evidence", "messages"]),
        ("under_appeal", BUYER, ["withdraw", "evidence", "messages"]),
    ],
)  # fmt: skip
def test_allowed_actions_per_role_follow_the_lifecycle(
    name: str, actor: Actor, expected: list[str]
) -> None:
    assert STATE_CASES[name]().dispute.allowed_actions(actor) == expected


def test_a_refusal_in_the_wrong_state_lists_what_the_role_may_do_now() -> None:
    case = buyers_turn()
    with pytest.raises(ActionNotAllowed) as refused:
        case.dispute.accept(case.later(hours=1).by(SELLER))
    assert refused.value.state == rules.NEGOTIATING
    assert refused.value.allowed == case.dispute.allowed_actions(SELLER)
    assert "buyer's turn" in refused.value.message


# Closed is terminal --------------------------------------------------------------------

COMMANDS: dict[str, Call] = {
    "accept": lambda d, c: d.accept(c),
    "reject": lambda d, c: d.reject(c, reason="no"),
    "offer": lambda d, c: d.offer(c, type="full_refund"),
    "accept_offer": lambda d, c: d.accept_offer(c),
    "revise": lambda d, c: d.revise(c, requested_resolution="refund_only", amount=1),
    "escalate": lambda d, c: d.escalate(c, reason="x"),
    "withdraw": lambda d, c: d.withdraw(c, reason="x"),
    "evidence": evidence,
    "messages": message,
    "request_info": ask_buyer,
    "rule": lambda d, c: d.rule(c, decision="full_refund", rationale="x"),
    "appeal": appeal,
    "chargeback": chargeback,
    "ship_return": lambda d, c: d.ship_return(c, carrier="x", tracking_number="y"),
    "return_delivered": lambda d, c: d.return_delivered(c, delivered_at=c.at),
    "confirm_return": lambda d, c: d.confirm_return(c),
    "contest_return": lambda d, c: d.contest_return(c, reason="x"),
    "refund_paid": lambda d, c: d.refund_paid(c, reference="r", paid_at=c.at),
    "refund_failed": lambda d, c: d.refund_failed(c, reason="x"),
    "extend_deadline": lambda d, c: d.extend_deadline(c, deadline="ruling", until=c.at, reason="x"),
    **{t: timeout(t) for t in rules.TIMEOUT_TRIGGERS},
}


def test_commands_here_cover_every_trigger() -> None:
    assert set(COMMANDS) == set(rules.TRIGGERS)


@pytest.mark.parametrize("closing", [r for r in sorted(SCENARIOS) if r[2] == C], ids="-".join)
def test_a_closed_dispute_refuses_every_command_of_every_role(
    closing: tuple[str, str, str],
) -> None:
    pull = SCENARIOS[closing]
    case = pull.build()
    pull.call(case.dispute, case.later(**pull.wait).by(pull.actor))
    assert case.state == C and case.dispute.closed_at == case.at
    before, version = snapshot(case.dispute), case.dispute.version
    case.later(days=400)
    for actor in ALL_ACTORS:
        for name, call in COMMANDS.items():
            with pytest.raises((RoleNotPermitted, ActionNotAllowed, DisputeNotFound)):
                call(case.dispute, case.by(actor))
            assert snapshot(case.dispute) == before, (actor, name)
    assert case.dispute.version == version
    assert case.dispute.due_timeouts(case.at) == []


# The table is what is published ----------------------------------------------------------


def test_describe_lists_every_state_trigger_and_row() -> None:
    described = rules.describe()
    assert described["states"] == rules.STATES
    assert described["terminal"] == [rules.CLOSED]
    assert set(described["actions"]) == {rules.action_name(t) for t in rules.ACTION_TRIGGERS}
    assert set(described["timeouts"]) == set(rules.TIMEOUT_TRIGGERS)
    sources = {r["source"] for r in described["transitions"]}
    assert sources == set(rules.OPEN_STATES)


def test_the_mermaid_diagram_shows_every_state_and_trigger() -> None:
    diagram = rules.mermaid()
    assert diagram.startswith("---") or "stateDiagram" in diagram
    for state in rules.STATES:
        assert state in diagram
    for trigger in rules.TRIGGERS:
        assert trigger in diagram
    assert rules.describe()["mermaid"] == diagram


def test_described_roles_are_the_roles_the_guards_let_through() -> None:
    for row in rules.describe()["transitions"]:
        for role in Role:
            assert (role.value in row["roles"]) == rules.role_may_row(row, role.value)
    assert not any(Role.AUDITOR in row["roles"] for row in rules.describe()["transitions"])


def test_time_outs_are_pulled_only_by_the_system() -> None:
    for trigger in rules.TIMEOUT_TRIGGERS:
        assert [r for r in Role if rules.role_may(trigger, r)] == [Role.SYSTEM]
    for trigger in rules.ACTION_TRIGGERS:
        assert not rules.role_may(trigger, Role.SYSTEM)


def test_each_action_name_maps_back_to_its_trigger_and_nothing_else_does() -> None:
    for trigger in rules.ACTION_TRIGGERS:
        assert rules.trigger_for(rules.action_name(trigger)) == trigger
    for bogus in ("accept_offer", "seller-response-timeout", "open", ""):
        assert rules.trigger_for(bogus) is None


def test_the_command_registry_covers_exactly_the_action_triggers() -> None:
    assert sorted(t.trigger for t in handlers.HANDLERS) == sorted(rules.ACTION_TRIGGERS)


def test_fire_timeout_refuses_a_trigger_that_is_not_a_time_out() -> None:
    case = open_case()
    with pytest.raises(InvalidInput) as refused:
        case.dispute.fire_timeout(case.later(days=30).by(SYSTEM), "accept")
    assert refused.value.field == "trigger"
    assert case.state == A


def test_every_row_names_exactly_one_role_guard() -> None:
    for row in rules.TRANSITIONS:
        assert len([c for c in row["conditions"] if c in rules.ROLE_GUARDS]) == 1, row
