"""The one registry of actions (services.dispute.domain.handlers): every action of the
transition table has one command type and one handler, and the registry, the contract's
action bodies, the permission table and the transition table agree."""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

import pytest

from services.dispute.domain import DomainError, InvalidInput, commands, handlers, rules
from services.dispute.domain.values import Decision, OfferType, Party, RequestedResolution
from shared import contract, permissions
from shared.money import Money
from tests.unit.helpers import AGENT, BUYER, SELLER, open_case

REGISTRY_ACTIONS = [command_type.action for command_type in handlers.HANDLERS]


def test_the_registry_the_bodies_the_permissions_and_the_table_name_the_same_actions() -> None:
    table = [rules.action_name(t) for t in rules.ACTION_TRIGGERS]
    permitted = [
        permissions.action_name(trigger)
        for trigger, roles in permissions.ACTIONS.items()
        if roles & permissions.CALLER_ROLES and trigger not in permissions.REPORTED_ON_ORDER
    ]
    assert sorted(REGISTRY_ACTIONS) == sorted(contract.ACTION_BODIES)
    assert sorted(REGISTRY_ACTIONS) == sorted(table)
    assert sorted(REGISTRY_ACTIONS) == sorted(permitted)
    assert len(set(REGISTRY_ACTIONS)) == len(REGISTRY_ACTIONS)
    # The action routes are generated in the registry's order: the contract's.
    assert list(contract.ACTION_BODIES) == REGISTRY_ACTIONS


@pytest.mark.parametrize("command_type", list(handlers.HANDLERS), ids=REGISTRY_ACTIONS)
def test_each_command_names_its_trigger_and_holds_its_bodys_fields(command_type: Any) -> None:
    assert rules.trigger_for(command_type.action) == command_type.trigger
    assert handlers.COMMANDS[command_type.action] is command_type
    assert dataclasses.is_dataclass(command_type)
    assert command_type.__dataclass_params__.frozen
    body = contract.ACTION_BODIES[command_type.action]
    assert [f.name for f in dataclasses.fields(command_type)] == list(body.model_fields)
    for name, hint in get_type_hints(command_type).items():
        if name in ("action", "trigger"):
            continue
        assert "object" not in str(hint) and "dict" not in str(hint), (name, hint)
        assert "Any" not in str(hint), (name, hint)


def test_a_command_is_frozen() -> None:
    command = commands.Escalate(reason="stuck")
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.reason = "other"  # type: ignore[misc]


def test_a_command_that_is_not_registered_is_refused() -> None:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Shout(commands.Command, action="shout"):
        text: str

    case = open_case()
    with pytest.raises(TypeError, match="Shout"):
        handlers.apply(case.dispute, case.by(BUYER), Shout(text="hey"))


def test_handlers_apply_typed_commands_through_the_table() -> None:
    case = open_case()
    handlers.apply(
        case.dispute,
        case.later(hours=1).by(SELLER),
        commands.MakeOffer(type=OfferType.PARTIAL_REFUND, amount=Money(4_000, "USD")),
    )
    assert case.dispute.state == rules.NEGOTIATING
    assert case.dispute.standing_offer is not None
    handlers.apply(
        case.dispute,
        case.later(hours=1).by(BUYER),
        commands.Revise(
            requested_resolution=RequestedResolution.REFUND_ONLY, amount=Money(6_000, "USD")
        ),
    )
    assert case.dispute.requested_amount == 6_000
    handlers.apply(case.dispute, case.later(hours=1).by(BUYER), commands.Escalate(reason="no"))
    handlers.apply(
        case.dispute,
        case.later(hours=1).by(AGENT),
        commands.RequestInfo(from_=Party.SELLER, question="Proof of shipment?"),
    )
    assert case.dispute.info_requests[-1]["from"] == "seller"
    handlers.apply(
        case.dispute,
        case.later(hours=1).by(AGENT),
        commands.Rule(decision=Decision.SELLER_FAVOURED, rationale="Tracking shows delivery"),
    )
    assert case.dispute.ruling is not None


def test_the_dispute_still_refuses_what_a_hand_made_command_gets_wrong() -> None:
    case = open_case()
    seller = case.later(hours=1).by(SELLER)
    with pytest.raises(InvalidInput) as wrong_currency:
        handlers.apply(
            case.dispute,
            seller,
            commands.MakeOffer(type=OfferType.PARTIAL_REFUND, amount=Money(10, "EUR")),
        )
    assert wrong_currency.value.field == "amount.currency"
    with pytest.raises(InvalidInput) as blank:
        handlers.apply(case.dispute, seller, commands.Reject(reason="  "))
    assert blank.value.field == "reason"
    # ...and the table refuses what the state does not allow: the buyer cannot accept.
    with pytest.raises(DomainError):
        handlers.apply(case.dispute, case.by(BUYER), commands.AcceptOffer())
    assert case.dispute.version == 1
