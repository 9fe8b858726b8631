"""The deadline table (`rules.DEADLINE_RULES`): every attribute of a deadline kind is
written there once, and the domain and the worker read it from there."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

from services.dispute.domain import Dispute, rules
from services.dispute.domain.dispute import LAPSES
from services.dispute.domain.errors import ActionNotAllowed
from services.dispute.domain.rules import DEADLINE_RULES, DeadlineKind
from services.dispute.domain.values import Role

from .helpers import AGENT, PHOTO, SELLER, buyers_turn, ctx, refund_pending, ruled

ROOT = Path(__file__).parents[2]


def test_every_kind_has_one_row() -> None:
    assert set(DEADLINE_RULES) == set(DeadlineKind)


def test_each_time_out_of_the_table_is_a_trigger_of_the_transitions_and_has_a_lapse() -> None:
    timeouts = {r.timeout for r in DEADLINE_RULES.values() if r.timeout}
    assert timeouts == set(rules.TIMEOUT_TRIGGERS)
    assert timeouts <= set(rules.TRIGGERS)
    assert set(LAPSES) == timeouts


def test_an_sla_only_deadline_fires_nothing() -> None:
    for kind, row in DEADLINE_RULES.items():
        if row.sla_only:
            assert row.timeout is None, kind
    assert rules.SLA_DEADLINES == (DeadlineKind.RULING, DeadlineKind.APPEAL_RULING)


def test_only_the_refund_payout_cannot_be_extended() -> None:
    assert set(DeadlineKind) - rules.EXTENDABLE_DEADLINES == {DeadlineKind.REFUND_PAYOUT}


def test_the_published_deadlines_are_the_table() -> None:
    described = rules.describe()["deadlines"]
    assert described == [{"kind": k.value, "timeout": r.timeout} for k, r in DEADLINE_RULES.items()]
    assert all(type(d["kind"]) is str for d in described)


def test_a_deadline_is_owed_by_whom_the_table_says() -> None:
    case = buyers_turn()
    [deadline] = case.dispute.deadlines
    assert deadline.kind == DeadlineKind.BUYER_RESPONSE
    assert deadline.due_from == DEADLINE_RULES[DeadlineKind.BUYER_RESPONSE].owed_by == Role.BUYER
    event = case.dispute.collect_events()[-1]
    assert isinstance(event, Dispute.Event)
    [carried] = event.deadlines  # as events publish it
    assert type(carried["kind"]) is str and type(carried["due_from"]) is str


def test_the_appeal_window_is_owed_by_whom_the_ruling_went_against() -> None:
    assert DEADLINE_RULES[DeadlineKind.APPEAL_WINDOW].owed_by is None
    assert ruled("full_refund").dispute.deadlines[0].due_from == "seller"
    assert ruled("partial_refund", 5_000).dispute.deadlines[0].due_from == "parties"


def test_an_extendable_deadline_moves_and_the_payout_does_not() -> None:
    case = ruled()
    until = case.at + timedelta(days=9)
    case.dispute.extend_deadline(
        ctx(AGENT, case.at), deadline="appeal_window", until=until, reason="holiday"
    )
    assert case.dispute.deadlines[0].due_at == until
    paying = refund_pending()
    with pytest.raises(ActionNotAllowed):  # the table's has_extendable_deadline guard
        paying.dispute.extend_deadline(
            ctx(AGENT, paying.at), deadline="refund_payout", until=until, reason="later"
        )


def test_no_deadline_kind_is_written_as_a_bare_string_outside_the_table() -> None:
    kinds = {k.value for k in DeadlineKind}
    found = []
    for path in sorted((ROOT / "services").rglob("*.py")):
        if path == ROOT / "services" / "dispute" / "domain" / "rules.py":
            continue
        tree = ast.parse(path.read_text())
        # A key or index ("ruling", "return_shipment") names a field, not a deadline.
        keys = {id(n.slice) for n in ast.walk(tree) if isinstance(n, ast.Subscript)}
        keys |= {id(k) for n in ast.walk(tree) if isinstance(n, ast.Dict) for k in n.keys}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in kinds and id(node) not in keys:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert found == []


def test_once_the_appeal_window_has_passed_appeal_is_no_longer_offered() -> None:
    """Before the worker fires the window's time-out, what is offered at a given time is
    what a command at that time is allowed to do."""
    case = ruled("full_refund")
    later = case.at + timedelta(days=3, minutes=1)
    assert "appeal" in case.dispute.allowed_actions(SELLER, case.at)
    assert "appeal" not in case.dispute.allowed_actions(SELLER, later)
    with pytest.raises(ActionNotAllowed) as refused:
        case.dispute.file_appeal(ctx(SELLER, later), reason="late", evidence=[PHOTO])
    assert "appeal" not in refused.value.allowed
