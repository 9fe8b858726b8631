"""The routes of the internal dispute service: the public API's paths, behind the gateway.

Endpoints are sync (they run in the thread pool: eventsourcing has no async API). Each
turns strings into domain values, calls one application method, and answers with the
resource as it now is. Errors are raised, and mapped to problems in `problems.py`.
"""

# No `from __future__ import annotations`: FastAPI reads the Annotated parameters.

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any

import isodate
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.dispute.domain import (
    Dispute,
    InvalidInput,
    Order,
    OrderFacts,
    rules,
)
from services.dispute.scheduler import ClockStore, DeadlineScheduler, ServiceClock, advance_clock
from shared import contract

from . import representations
from .actions import add_action_routes
from .dependencies import ActorDep, AppDep, CallDep, OperationsDep, SettingsDep
from .idempotency import run, run_plain, to_response
from .inputs import evidence_items, to_money
from .problems import ApiProblem, unknown_action

log = logging.getLogger("services.dispute.api")


@dataclass(frozen=True)
class SandboxTime:
    """The deadline worker's pieces the sandbox endpoint drives (services.dispute.scheduler)."""

    clock: ServiceClock
    store: ClockStore
    scheduler: DeadlineScheduler


PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"model": contract.Problem, "content": {contract.PROBLEM_MEDIA_TYPE: {}}}
    for status in (401, 403, 404, 409, 412, 422)
}

router = APIRouter(prefix="/v1")
health = APIRouter()


# Orders ----------------------------------------------------------------------------


@router.put(
    "/orders/{order_id}",
    response_model=contract.Order,
    status_code=200,
    responses={201: {"model": contract.Order}, **PROBLEMS},
    tags=["orders"],
)
def put_order(
    order_id: contract.Id, body: contract.OrderPut, call: CallDep, request: Request
) -> Response:
    """Registers an order (201) or adds shipping and delivery facts to it (200). Service only."""

    def perform(respond: Any) -> tuple[Order, bool]:
        facts = OrderFacts.parse(
            buyer_id=body.buyer_id,
            seller_id=body.seller_id,
            amount=to_money(body.amount, "amount"),
            payment_method=body.payment_method,
            placed_at=body.placed_at,
            shipped_at=body.shipped_at,
            tracking=body.tracking.model_dump() if body.tracking else None,
            delivered_at=body.delivered_at,
        )
        return call.application.put_order(
            call.actor, call.request_id, order_id, facts, respond=respond
        )

    def render(order: Order, created: bool) -> Any:
        return representations.order_reply(order, 201 if created else 200, created=created)

    return run(request, call, perform, render)


@router.post(
    "/orders/{order_id}/protection-extensions",
    response_model=contract.Order,
    responses=PROBLEMS,
    tags=["orders"],
)
def extend_protection(
    order_id: contract.Id, body: contract.ProtectionExtensionCreate, call: CallDep, request: Request
) -> Response:
    """The seller extends the buyer-protection window before a dispute exists."""

    def perform(respond: Any) -> tuple[Order, bool]:
        order = call.application.extend_protection(
            call.actor, call.request_id, order_id, body.days, body.reason, respond=respond
        )
        return order, False

    return run(request, call, perform, lambda order, _: representations.order_reply(order))


@router.post(
    "/orders/{order_id}/chargebacks",
    response_model=contract.Order,
    status_code=201,
    responses=PROBLEMS,
    tags=["orders"],
)
def record_chargeback(
    order_id: contract.Id, body: contract.ChargebackCreate, call: CallDep, request: Request
) -> Response:
    """The payments service reports a chargeback (201, the order with its chargebacks). An
    open dispute on the order closes with outcome `chargeback`; after a paid refund the
    chargeback is a double recovery; the order can no longer be disputed."""

    def perform(respond: Any) -> tuple[Order, bool]:
        order = call.application.record_chargeback(
            call.actor,
            call.request_id,
            order_id,
            reference=body.reference,
            amount=to_money(body.amount, "amount"),
            reason=body.reason,
            opened_at=body.opened_at,
            respond=respond,
        )
        return order, True

    return run(
        request,
        call,
        perform,
        lambda order, _: representations.order_reply(order, 201, created=True),
    )


@router.get(
    "/orders/{order_id}", response_model=contract.Order, responses=PROBLEMS, tags=["orders"]
)
def get_order(order_id: contract.Id, application: AppDep, actor: ActorDep) -> Response:
    return to_response(representations.order_reply(application.get_order(actor, order_id)))


# Disputes --------------------------------------------------------------------------


@router.post(
    "/disputes",
    response_model=contract.Dispute,
    status_code=201,
    responses=PROBLEMS,
    tags=["disputes"],
)
def open_dispute(body: contract.DisputeCreate, call: CallDep, request: Request) -> Response:
    """The buyer opens a dispute about one of their orders."""

    def perform(respond: Any) -> tuple[Dispute, bool]:
        dispute = call.application.open_dispute(
            call.actor,
            call.request_id,
            order_ref=body.order_id,
            reason=body.reason,
            requested_resolution=body.requested_resolution,
            amount=to_money(body.amount, "amount"),
            description=body.description,
            evidence=[e.as_dict() for e in evidence_items(body.evidence, call.settings)],
            respond=respond,
        )
        return dispute, True

    def render(dispute: Dispute, _: bool) -> Any:
        return representations.dispute_reply(
            dispute, call.actor, 201, created=True, at=call.application.clock.now()
        )

    return run(request, call, perform, render)


@router.get(
    "/disputes/{dispute_id}",
    response_model=contract.Dispute,
    responses=PROBLEMS,
    tags=["disputes"],
)
def get_dispute(
    dispute_id: contract.Id,
    application: AppDep,
    actor: ActorDep,
    version: Annotated[
        int | None,
        Query(ge=1, le=contract.VERSION_MAX, description="the dispute at this version"),
    ] = None,
    as_of: Annotated[
        contract.Time | None, Query(description="the dispute as it was at this time (RFC 3339)")
    ] = None,
) -> Response:
    if version is not None and as_of is not None:
        raise InvalidInput("as_of", "exclusive", "give either version or as_of, not both")
    dispute = application.get_dispute(actor, dispute_id, version=version, as_of=as_of)
    historical = version is not None or as_of is not None
    return to_response(
        representations.dispute_reply(
            dispute, actor, historical=historical, at=application.clock.now()
        )
    )


@router.get(
    "/disputes/{dispute_id}/events",
    response_model=contract.DisputeHistory,
    responses=PROBLEMS,
    tags=["disputes"],
)
def dispute_events(dispute_id: contract.Id, application: AppDep, actor: ActorDep) -> Response:
    events = application.dispute_events(actor, dispute_id)
    history = contract.DisputeHistory(
        dispute_id=str(events[0].originator_id) if events else dispute_id,
        events=[representations.event_view(e) for e in events],
    )
    return to_response(representations.json_reply(history))


add_action_routes(router, PROBLEMS)


@router.post("/disputes/{dispute_id}/{action}", include_in_schema=False)
def unknown(dispute_id: str, action: str, actor: ActorDep) -> Response:
    raise unknown_action(action)


# For other services and dashboards -------------------------------------------------


@router.get("/events", response_model=contract.EventFeed, responses=PROBLEMS, tags=["feed"])
def event_feed(
    operations: OperationsDep,
    actor: ActorDep,
    after: Annotated[
        int, Query(ge=0, le=contract.POSITION_MAX, description="the last position read")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Every event of every dispute and order, in commit order (service, agent, auditor)."""
    feed = representations.feed_view(operations.feed(after, limit))
    return to_response(representations.json_reply(feed))


@router.get("/state-machine", response_model=contract.StateMachine, tags=["meta"])
def state_machine(actor: ActorDep) -> Response:
    """The states, actions and transitions of the one transition table, and its diagram."""
    return to_response(
        representations.json_reply(contract.StateMachine.model_validate(rules.describe()))
    )


# Sandbox time ----------------------------------------------------------------------


def parse_advance(text: str) -> timedelta:
    try:
        duration = isodate.parse_duration(text)
    except (isodate.ISO8601Error, ValueError, OverflowError):
        duration = None
    # Zero is allowed: it only fires what is already due.
    if not isinstance(duration, timedelta) or duration < timedelta(0):
        raise InvalidInput(
            "advance",
            "iso8601_duration",
            "advance must be an ISO 8601 duration in days or smaller units, e.g. P5D",
        )
    return duration


@router.post(
    "/sandbox/clock", response_model=contract.SandboxClock, responses=PROBLEMS, tags=["sandbox"]
)
def advance_sandbox_clock(
    body: contract.SandboxClockAdvance,
    call: CallDep,
    settings: SettingsDep,
    request: Request,
) -> Response:
    """Moves the service's clock forward and returns once every deadline now due has fired.
    Only with DISPUTES_SANDBOX=1; otherwise this path does not exist (404)."""
    if not settings.sandbox:
        raise ApiProblem(404, "not_found", "Not found", f"{request.url.path} was not found")
    duration = parse_advance(body.advance)

    sandbox: SandboxTime = request.app.state.sandbox
    if sandbox.clock.now() + duration > contract.LATEST:
        raise InvalidInput(
            "advance",
            "clock_range",
            f"the sandbox clock must stay before {contract.LATEST.isoformat()}; it is now "
            f"{sandbox.clock.now().isoformat()}",
        )

    # One request, one move: a retry with the same key finishes the same move.
    key = None if call.idempotency_key is None else f"{call.principal} {call.idempotency_key}"

    def execute() -> Any:
        now = advance_clock(sandbox.clock, sandbox.store, sandbox.scheduler, duration, request=key)
        return representations.json_reply(
            contract.SandboxClock(now=now, offset_seconds=sandbox.clock.offset.total_seconds())
        )

    return run_plain(request, call, execute)


@router.get(
    "/sandbox/clock", response_model=contract.SandboxClock, responses=PROBLEMS, tags=["sandbox"]
)
def sandbox_clock(actor: ActorDep, settings: SettingsDep, request: Request) -> Response:
    """The service's clock now and how far it is ahead of real time. Only with
    DISPUTES_SANDBOX=1; otherwise this path does not exist (404)."""
    if not settings.sandbox:
        raise ApiProblem(404, "not_found", "Not found", f"{request.url.path} was not found")
    sandbox: SandboxTime = request.app.state.sandbox
    sandbox.clock.refresh()  # another replica or the worker's caller may have moved it
    return to_response(
        representations.json_reply(
            contract.SandboxClock(
                now=sandbox.clock.now(), offset_seconds=sandbox.clock.offset.total_seconds()
            )
        )
    )


# Health ----------------------------------------------------------------------------


@health.get("/healthz", response_model=contract.Health, tags=["meta"])
def healthz() -> contract.Health:
    """The process is up."""
    return contract.Health(status="ok")


@health.get(
    "/readyz",
    response_model=contract.Health,
    response_model_exclude_none=True,
    tags=["meta"],
    responses={503: {"model": contract.Health, "description": "the store is unreachable"}},
)
def readyz(operations: OperationsDep) -> Response:
    """The event store answers (within about a second while it is away, saying why); and
    how many events the readers set aside."""
    try:
        quarantined = operations.readiness()
    except Exception as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log.debug("not ready: %s", reason)
        unavailable = contract.Health(status="unavailable", reason=reason)
        return Response(
            unavailable.model_dump_json(exclude_none=True),
            status_code=503,
            media_type="application/json",
            headers={"Retry-After": "1"},
        )
    ready = contract.Health(status="ok", quarantined_events=quarantined)
    return Response(ready.model_dump_json(exclude_none=True), media_type="application/json")
