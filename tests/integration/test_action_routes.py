"""The dispute service's action routes come from the registry of commands joined with
the permission table: one route per command, with the contract's body, the table's
roles, and the body made into the command by one adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.dispute.api import create_app
from services.dispute.api.inputs import command_from_body
from services.dispute.domain import InvalidInput, commands, handlers
from services.dispute.domain.values import EvidenceKind, OfferType, Party
from services.dispute.settings import Settings
from shared import contract, permissions
from shared.money import Money

SHA = "c" * 64


def settings(environment: str = "test") -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        environment=environment,
        service_token="test-internal-token-0123456789",
        database_url=None,
        data_dir=Path("unused"),
    )


@pytest.fixture(scope="module")
def openapi() -> dict[str, Any]:
    return create_app(settings()).openapi()


def test_each_command_of_the_registry_has_its_route_and_no_other_action_route_exists(
    openapi: dict[str, Any],
) -> None:
    routes = {
        path: operation["post"]
        for path, operation in openapi["paths"].items()
        if "post" in operation and operation["post"]["tags"] == ["dispute actions"]
    }
    assert list(routes) == [permissions.action_path(t.action) for t in handlers.HANDLERS]
    for command_type in handlers.HANDLERS:
        operation = routes[permissions.action_path(command_type.action)]
        model = contract.ACTION_BODIES[command_type.action]
        roles = sorted(permissions.action_roles(command_type.trigger))
        assert operation["summary"] == command_type.action
        assert operation["operationId"].startswith(f"action_{command_type.trigger}_")
        assert operation["description"].endswith(f"Roles: {', '.join(roles)}.")
        assert model.__name__ in str(operation["requestBody"])
        assert operation["requestBody"].get("required", False) == bool(model.model_fields)


def test_a_body_becomes_its_command_in_the_domains_types() -> None:
    offer = contract.OfferBody.model_validate(
        {"type": "partial_refund", "amount": {"amount": 2500, "currency": "USD"}}
    )
    assert command_from_body(commands.MakeOffer, offer, settings()) == commands.MakeOffer(
        type=OfferType.PARTIAL_REFUND, amount=Money(2500, "USD"), message=None
    )
    ask = contract.RequestInfoBody.model_validate({"from": "seller", "question": "When?"})
    assert command_from_body(commands.RequestInfo, ask, settings()) == commands.RequestInfo(
        from_=Party.SELLER, question="When?"
    )
    item = {"kind": "photo", "uri": "https://files.example/p.jpg", "sha256": SHA}
    appeal = contract.AppealBody.model_validate({"reason": "look", "evidence": [item]})
    command = command_from_body(commands.Appeal, appeal, settings())
    assert command == commands.Appeal(
        reason="look",
        evidence=(commands.EvidenceItem(EvidenceKind.PHOTO, item["uri"], SHA),),
    )
    assert command_from_body(commands.Accept, None, settings()) == commands.Accept()


def test_an_evidence_url_over_http_is_refused_outside_development_naming_its_field() -> None:
    items = [
        {"kind": "photo", "uri": "https://files.example/p.jpg", "sha256": SHA},
        {"kind": "photo", "uri": "http://files.example/p.jpg", "sha256": SHA},
    ]
    body = contract.EvidenceBody.model_validate({"evidence": items})
    with pytest.raises(InvalidInput) as refused:
        command_from_body(commands.AddEvidence, body, settings())
    assert (refused.value.field, refused.value.rule) == ("evidence[1].uri", "https")
    allowed = command_from_body(commands.AddEvidence, body, settings("development"))
    assert isinstance(allowed, commands.AddEvidence) and len(allowed.evidence) == 2
