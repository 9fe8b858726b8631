"""Sandbox time: read and move the service's clock (only with DISPUTES_SANDBOX=1)."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.

from typing import Any

from shared import contract

from .common import COMMAND_PROBLEMS, READ_PROBLEMS, RequestId, forwarding_router, roles

router = forwarding_router()

CLOCK = "/v1/sandbox/clock"


@router.post(
    CLOCK,
    tags=["sandbox"],
    summary="Move the sandbox clock forward; returns once every due deadline has fired",
    description=f"Only with DISPUTES_SANDBOX=1 ({roles('POST', CLOCK)}); otherwise 404.",
    response_model=contract.SandboxClock,
    responses=COMMAND_PROBLEMS,
)
def advance_sandbox_clock(
    body: contract.SandboxClockAdvance, request_id: RequestId = None
) -> Any: ...


@router.get(
    CLOCK,
    tags=["sandbox"],
    summary="The sandbox clock: its now and how far it is ahead of real time",
    description="Only with DISPUTES_SANDBOX=1 (any role); otherwise 404.",
    response_model=contract.SandboxClock,
    responses=READ_PROBLEMS,
)
def sandbox_clock(request_id: RequestId = None) -> Any: ...
