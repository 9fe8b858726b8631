"""The dispute's action routes, `POST /v1/disputes/{dispute_id}/<action>`, generated from
the registry of commands (services.dispute.domain.handlers) joined with the permission
table (shared.permissions): one route per command type, its body the contract's model
for the action, its description the roles the table lets pull the trigger.

Each route turns its body into the command (`inputs.command_from_body`) and hands it to
`DisputeApplication.handle`, with the request's If-Match and Idempotency-Key.
"""

# No `from __future__ import annotations`: FastAPI reads each endpoint's body model from
# its evaluated annotations.

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.dispute.application import Respond
from services.dispute.domain import Dispute
from services.dispute.domain.commands import Command
from services.dispute.domain.handlers import HANDLERS
from services.dispute.infrastructure.idempotency import StoredResponse
from shared import contract, permissions

from . import representations
from .dependencies import Call, CallDep
from .idempotency import run
from .inputs import command_from_body


def action_roles(command_type: type[Command]) -> list[str]:
    """The callers the permission table lets take the action (the state decides when)."""
    return sorted(permissions.action_roles(command_type.trigger) & permissions.CALLER_ROLES)


def _perform(
    command_type: type[Command],
    dispute_id: str,
    body: BaseModel | None,
    call: Call,
    request: Request,
) -> Response:
    def perform(respond: Respond | None) -> tuple[Dispute, bool]:
        command = command_from_body(command_type, body, call.settings)
        dispute = call.application.handle(
            call.actor,
            call.request_id,
            dispute_id,
            command,
            expected_version=call.if_match,
            respond=respond,
        )
        return dispute, False

    def render(dispute: Dispute, _: bool) -> StoredResponse:
        return representations.dispute_reply(dispute, call.actor, at=call.application.clock.now())

    return run(request, call, perform, render)


def _endpoint(command_type: type[Command], model: type[BaseModel]) -> Callable[..., Response]:
    if model.model_fields:

        def endpoint(
            dispute_id: contract.Id,
            body: Annotated[model, Body()],  # type: ignore[valid-type]
            call: CallDep,
            request: Request,
        ) -> Response:
            return _perform(command_type, dispute_id, body, call, request)

    else:  # an action without fields takes no body, or an empty one

        def endpoint(  # type: ignore[misc]
            dispute_id: contract.Id,
            call: CallDep,
            request: Request,
            body: Annotated[model | None, Body()] = None,  # type: ignore[valid-type]
        ) -> Response:
            return _perform(command_type, dispute_id, body, call, request)

    endpoint.__name__ = "action_" + command_type.trigger
    roles = ", ".join(action_roles(command_type))
    endpoint.__doc__ = (model.__doc__ or "").strip() + f"\n\nRoles: {roles}."
    return endpoint


def add_action_routes(router: APIRouter, responses: dict[int | str, dict[str, Any]]) -> None:
    """One route per command of the registry, in the registry's order."""
    for command_type in HANDLERS:
        path = permissions.action_path(command_type.action)
        if permissions.route_roles("POST", path) != frozenset(action_roles(command_type)):
            raise RuntimeError(f"the permission table's route {path} and its action disagree")
        router.add_api_route(
            path.removeprefix("/v1"),
            _endpoint(command_type, contract.ACTION_BODIES[command_type.action]),
            methods=["POST"],
            response_model=contract.Dispute,
            responses=responses,
            tags=["dispute actions"],
            summary=command_type.action,
        )
