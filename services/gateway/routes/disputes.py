"""Disputes: opening one, reading it (as it is, was, and its history), and one route per
action of `contract.ACTION_BODIES`, each for the roles the permission table names."""

# No `from __future__ import annotations`: the generated action routes need their body
# model evaluated at definition time.

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, Query
from pydantic import BaseModel

from shared import contract
from shared.permissions import action_path

from .common import (
    COMMAND_PROBLEMS,
    ETAG_HEADER,
    ID_HEADER,
    LOCATION,
    READ_PROBLEMS,
    IdempotencyKey,
    IfMatch,
    RequestId,
    forwarding_router,
    ok,
    roles,
)

router = forwarding_router()

DISPUTES = "/v1/disputes"


@router.post(
    DISPUTES,
    tags=["disputes"],
    summary=f"Open a dispute about an order ({roles('POST', DISPUTES)})",
    status_code=201,
    response_model=contract.Dispute,
    responses={
        201: {
            "model": contract.Dispute,
            "description": "opened",
            "headers": {**ID_HEADER, **ETAG_HEADER, **LOCATION},
        },
        **COMMAND_PROBLEMS,
    },
)
def open_dispute(
    body: contract.DisputeCreate,
    request_id: RequestId = None,
    idempotency_key: IdempotencyKey = None,
) -> Any: ...


@router.get(
    DISPUTES,
    tags=["disputes"],
    summary="List disputes (a party sees only its own), newest first, by cursor",
    description="Served from the dashboard projection: a write shows here once the "
    "projector has processed it; `lag` says how far behind (events, seconds) the list is.",
    response_model=contract.DisputeList,
    responses=READ_PROBLEMS,
)
def list_disputes(
    state: Annotated[contract.State | None, Query()] = None,
    reason: Annotated[contract.ReasonName | None, Query()] = None,
    seller_id: Annotated[contract.Id | None, Query()] = None,
    buyer_id: Annotated[contract.Id | None, Query()] = None,
    opened_after: Annotated[contract.Time | None, Query()] = None,
    opened_before: Annotated[contract.Time | None, Query()] = None,
    deadline_before: Annotated[
        contract.Time | None, Query(description="the next deadline falls before this time")
    ] = None,
    cursor: Annotated[
        contract.Cursor | None, Query(description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[contract.ListLimit, Query()] = contract.LIST_LIMIT_DEFAULT,
    request_id: RequestId = None,
) -> Any: ...


@router.get(
    DISPUTES + "/{dispute_id}",
    tags=["disputes"],
    summary="A dispute as it is now, or as it was at a version or a time",
    response_model=contract.Dispute,
    responses={**ok(contract.Dispute, "the dispute", **ETAG_HEADER), **READ_PROBLEMS},
)
def get_dispute(
    dispute_id: contract.Id,
    version: Annotated[
        contract.DisputeVersion | None, Query(description="as it was at this version")
    ] = None,
    as_of: Annotated[
        contract.Time | None, Query(description="as it was at this time (RFC 3339)")
    ] = None,
    request_id: RequestId = None,
) -> Any: ...


@router.get(
    DISPUTES + "/{dispute_id}/events",
    tags=["disputes"],
    summary="Every event of a dispute, in order",
    response_model=contract.DisputeHistory,
    responses=READ_PROBLEMS,
)
def dispute_events(dispute_id: contract.Id, request_id: RequestId = None) -> Any: ...


@router.get(
    DISPUTES + "/{dispute_id}/verification",
    tags=["disputes"],
    summary="Whether the dispute's stored history is intact",
    response_model=contract.Verification,
    responses=READ_PROBLEMS,
)
def verify_dispute(dispute_id: contract.Id, request_id: RequestId = None) -> Any: ...


def _action_endpoint(action: str, model: type[BaseModel]) -> Callable[..., Any]:
    if model.model_fields:

        def endpoint(
            dispute_id: contract.Id,
            body: Annotated[model, Body()],  # type: ignore[valid-type]
            request_id: RequestId = None,
            idempotency_key: IdempotencyKey = None,
            if_match: IfMatch = None,
        ) -> Any: ...

    else:

        def endpoint(  # type: ignore[misc]
            dispute_id: contract.Id,
            body: Annotated[model | None, Body()] = None,  # type: ignore[valid-type]
            request_id: RequestId = None,
            idempotency_key: IdempotencyKey = None,
            if_match: IfMatch = None,
        ) -> Any: ...

    endpoint.__name__ = "action_" + action.replace("-", "_")
    endpoint.__doc__ = (
        (model.__doc__ or "").strip()
        + f"\n\nRoles: {roles('POST', action_path(action))}. Answers the dispute as it now "
        "is, with its ETag. An action the state does not allow answers 409 with the "
        "allowed actions."
    )
    return endpoint


for _action, _model in contract.ACTION_BODIES.items():
    router.add_api_route(
        action_path(_action),
        _action_endpoint(_action, _model),
        methods=["POST"],
        tags=["dispute actions"],
        summary=f"{_action} ({roles('POST', action_path(_action))})",
        response_model=contract.Dispute,
        responses={
            **ok(contract.Dispute, "the dispute as it now is", **ETAG_HEADER),
            **COMMAND_PROBLEMS,
        },
    )
