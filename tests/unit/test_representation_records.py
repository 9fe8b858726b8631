"""A dispute's JSON answer reuses each record's serialized fragment
(`representations.RecordFragments`): it must be byte for byte the representation made
afresh by its contract model, for every step of the recorded histories, for every caller,
and for any text a message may hold."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import assume, given
from hypothesis import strategies as st

from services.dispute.api import representations
from services.dispute.api.representations import RecordFragments, dispute_json, dispute_view, dumps
from services.dispute.application import DisputeApplication
from services.dispute.domain import Dispute, DomainError
from services.dispute.domain.values import Actor, Role
from tests.unit.helpers import AGENT, BUYER, SELLER, ctx, open_case, ruled

FIXTURE = Path(__file__).parents[1] / "fixtures" / "histories_cd54e3f.json"
HISTORIES: dict[str, Any] = json.loads(FIXTURE.read_text())
APP = DisputeApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def afresh(dispute: Dispute, actor: Actor, historical: bool = False) -> bytes:
    return dumps(dispute_view(dispute, actor, historical=historical))


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_every_step_of_the_histories_renders_as_the_contract_model_does(name: str) -> None:
    history = HISTORIES[name]
    dispute: Dispute | None = None
    for record in history["events"]:
        event = APP.mapper.to_domain_event(
            StoredEvent(UUID(history["id"]), record["version"], record["topic"],
                        record["state"].encode())
        )  # fmt: skip
        dispute = event.mutate(dispute)
        assert dispute is not None
        callers = [Actor(Role.BUYER, dispute.buyer_id), Actor(Role.SELLER, dispute.seller_id),
                   Actor(Role.AGENT, "agent-9")]  # fmt: skip
        for actor in callers:
            for historical in (False, True):
                assert dispute_json(dispute, actor, historical=historical) == afresh(
                    dispute, actor, historical
                )


@given(st.lists(st.text(min_size=1, max_size=60), min_size=1, max_size=8))
def test_any_message_text_renders_as_the_contract_model_does(bodies: list[str]) -> None:
    case = open_case()
    for n, body in enumerate(bodies):
        try:
            case.dispute.post_message(ctx(BUYER, case.at + timedelta(minutes=n)), body=body)
        except DomainError:
            assume(False)
    for actor in (BUYER, SELLER, AGENT):
        assert dispute_json(case.dispute, actor) == afresh(case.dispute, actor)


def test_a_full_memo_forgets_the_oldest_fragments_and_still_answers_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    small = RecordFragments(maxsize=3)
    monkeypatch.setattr(representations, "RECORDS", small)
    case = open_case()
    for n in range(10):
        case.dispute.post_message(ctx(SELLER, case.at + timedelta(minutes=n)), body=f"m{n}")
        assert dispute_json(case.dispute, BUYER) == afresh(case.dispute, BUYER)
    assert len(small._kept) == 3


def test_an_equal_record_that_is_another_object_is_serialized_for_itself() -> None:
    memo = RecordFragments()
    first = {"from_role": "buyer", "from_id": "b1", "body": "one", "at": "2026-03-02T09:00:00Z"}
    assert memo.json_list([first], representations.contract.Message).count(b'"one"') == 1
    second = dict(first, body="two")
    assert b'"two"' in memo.json_list([first, second], representations.contract.Message)


def test_the_answer_lists_the_actions_allowed_at_the_time_it_is_given() -> None:
    """After the appeal window ends and before the worker fires its time-out, the command
    refuses an appeal: the answer must not offer one."""
    case = ruled("full_refund")  # went against the seller
    window_end = case.dispute.deadlines[0].due_at
    before = json.loads(dispute_json(case.dispute, SELLER, at=window_end - timedelta(seconds=1)))
    after = json.loads(dispute_json(case.dispute, SELLER, at=window_end + timedelta(seconds=1)))
    assert "appeal" in before["allowed_actions"]
    assert "appeal" not in after["allowed_actions"]
    assert after["allowed_actions"] == case.dispute.allowed_actions(
        SELLER, window_end + timedelta(seconds=1)
    )
