"""The public contract (api.md) as routes: their signatures are the OpenAPI document.

Every public route is a `ForwardingRoute`: FastAPI reads the endpoint's signature (path
and query parameters, body model, response model, problems) to describe the route, but
the request is never parsed here. The route's handler is the `Forwarder`, which checks
the caller and relays the raw request to the dispute service, where the body is
validated once. So the endpoint functions below are descriptions and are never called.
"""

# No `from __future__ import annotations`: the generated action routes need their body
# model evaluated at definition time.

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Security
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from pydantic import BaseModel

from shared import contract

from .authorization import action_path, action_roles_named, route_roles


class ForwardingRoute(APIRoute):
    """A public route whose handler forwards to the dispute service."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        (method,) = self.methods or {"GET"}
        roles = route_roles(method, self.path)

        async def forward(request: Request) -> Response:
            response: Response = await request.app.state.forwarder(request, roles)
            return response

        return forward


bearer = HTTPBearer(
    bearerFormat="JWT",
    description="HS256 JWT with claims sub, role (buyer, seller, agent, service, auditor), exp",
)

RequestId = Annotated[
    str | None,
    Header(
        alias="X-Request-ID",
        description="your correlation id (else one is made); returned on the response and "
        "recorded in the events the request causes",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7E]{1,255}$",
        description="a repeat with the same key and body returns the first response and "
        "does nothing new; the same key with another method, path or body answers 422 "
        "idempotency_key_reused; kept at least 24 hours",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=r'^(\*|(W/)?"?[0-9]{1,18}"?)$',
        description='the version you expect, e.g. "7" (or *); another current version answers 412',
    ),
]


def _problem(description: str) -> dict[str, Any]:
    return {
        "model": contract.Problem,
        "description": description,
        "content": {contract.PROBLEM_MEDIA_TYPE: {}},
    }


_ID_HEADER = {"X-Request-ID": {"description": "the request's id", "schema": {"type": "string"}}}
_ETAG_HEADER = {"ETag": {"description": 'the version, e.g. "7"', "schema": {"type": "string"}}}
_LOCATION = {"Location": {"description": "the new resource", "schema": {"type": "string"}}}

COMMON_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: _problem("a path with '.' or '..' segments or an encoded slash (invalid_path)"),
    401: _problem("no token, or a bad one (unauthenticated)"),
    403: _problem("the caller's role may not do this (role_not_permitted)"),
    429: _problem(
        "over the principal's rate limit, or the address's without valid credentials; "
        "see Retry-After (rate_limited)"
    ),
    431: _problem("the request headers are over the size limit (headers_too_large)"),
    503: _problem("the dispute service is unavailable (upstream_unavailable, unavailable)"),
    504: _problem("the dispute service did not answer in time (upstream_timeout)"),
}
READ_PROBLEMS = {
    **COMMON_PROBLEMS,
    404: _problem("no such resource, or not the caller's (not_found...)"),
    422: _problem("invalid query parameters (invalid_input)"),
}
COMMAND_PROBLEMS = {
    **READ_PROBLEMS,
    409: _problem(
        "the state does not allow it (action_not_allowed, with allowed_actions), a "
        "concurrent update, or a request with the same Idempotency-Key still running "
        "(idempotency_in_progress)"
    ),
    412: _problem("If-Match names another version (version_mismatch)"),
    408: _problem("the body did not arrive in time (request_timeout)"),
    413: _problem("the body is over the size limit (payload_too_large)"),
    415: _problem("the body is not sent as application/json (unsupported_media_type)"),
    422: _problem(
        "invalid fields, each listed in errors (invalid_input), a rule of buyer "
        "protection (protection_ended, reason_not_covered), or an Idempotency-Key "
        "already used for another request (idempotency_key_reused)"
    ),
}


def _ok(model: type[BaseModel], description: str, **headers: Any) -> dict[int | str, Any]:
    return {200: {"model": model, "description": description, "headers": headers}}


router = APIRouter(
    route_class=ForwardingRoute,
    dependencies=[Security(bearer)],
)

# Orders ----------------------------------------------------------------------------


@router.put(
    "/v1/orders/{order_id}",
    tags=["orders"],
    summary="Register an order or add shipping facts (service)",
    response_model=contract.Order,
    responses={
        **_ok(contract.Order, "shipping facts added", **_ID_HEADER, **_ETAG_HEADER),
        201: {
            "model": contract.Order,
            "description": "registered",
            "headers": {**_ID_HEADER, **_ETAG_HEADER, **_LOCATION},
        },
        **COMMAND_PROBLEMS,
    },
)
def put_order(
    order_id: contract.Id,
    body: contract.OrderPut,
    request_id: RequestId = None,
    idempotency_key: IdempotencyKey = None,
) -> Any: ...


@router.post(
    "/v1/orders/{order_id}/protection-extensions",
    tags=["orders"],
    summary="Extend the buyer-protection window before a dispute exists (seller)",
    response_model=contract.Order,
    responses={**_ok(contract.Order, "the order", **_ETAG_HEADER), **COMMAND_PROBLEMS},
)
def extend_protection(
    order_id: contract.Id,
    body: contract.ProtectionExtensionCreate,
    request_id: RequestId = None,
    idempotency_key: IdempotencyKey = None,
) -> Any: ...


@router.post(
    "/v1/orders/{order_id}/chargebacks",
    tags=["orders"],
    summary="Report a chargeback on an order (service)",
    description="An open dispute on the order closes with outcome `chargeback` (no refund is "
    "paid for it afterwards); after a paid refund the chargeback is flagged "
    "`double_recovery` with its `amount_at_risk`; the order can no longer be disputed "
    "(409 order_charged_back). A reference is recorded once per order (409 "
    "chargeback_exists).",
    status_code=201,
    response_model=contract.Order,
    responses={
        201: {
            "model": contract.Order,
            "description": "recorded; the order with its chargebacks",
            "headers": {**_ID_HEADER, **_ETAG_HEADER},
        },
        **COMMAND_PROBLEMS,
    },
)
def record_chargeback(
    order_id: str,
    body: contract.ChargebackCreate,
    request_id: RequestId = None,
    idempotency_key: IdempotencyKey = None,
) -> Any: ...


@router.get(
    "/v1/orders/{order_id}",
    tags=["orders"],
    summary="An order, with protection_ends_at and its dispute_id",
    response_model=contract.Order,
    responses={**_ok(contract.Order, "the order", **_ETAG_HEADER), **READ_PROBLEMS},
)
def get_order(order_id: contract.Id, request_id: RequestId = None) -> Any: ...


# Disputes --------------------------------------------------------------------------


@router.post(
    "/v1/disputes",
    tags=["disputes"],
    summary="Open a dispute about an order (buyer)",
    status_code=201,
    response_model=contract.Dispute,
    responses={
        201: {
            "model": contract.Dispute,
            "description": "opened",
            "headers": {**_ID_HEADER, **_ETAG_HEADER, **_LOCATION},
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
    "/v1/disputes",
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
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    request_id: RequestId = None,
) -> Any: ...


@router.get(
    "/v1/disputes/{dispute_id}",
    tags=["disputes"],
    summary="A dispute as it is now, or as it was at a version or a time",
    response_model=contract.Dispute,
    responses={**_ok(contract.Dispute, "the dispute", **_ETAG_HEADER), **READ_PROBLEMS},
)
def get_dispute(
    dispute_id: contract.Id,
    version: Annotated[
        int | None, Query(ge=1, le=contract.VERSION_MAX, description="as it was at this version")
    ] = None,
    as_of: Annotated[
        contract.Time | None, Query(description="as it was at this time (RFC 3339)")
    ] = None,
    request_id: RequestId = None,
) -> Any: ...


@router.get(
    "/v1/disputes/{dispute_id}/events",
    tags=["disputes"],
    summary="Every event of a dispute, in order",
    response_model=contract.DisputeHistory,
    responses=READ_PROBLEMS,
)
def dispute_events(dispute_id: contract.Id, request_id: RequestId = None) -> Any: ...


@router.get(
    "/v1/disputes/{dispute_id}/verification",
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
    roles = ", ".join(sorted(action_roles_named(action)))
    endpoint.__doc__ = (
        (model.__doc__ or "").strip()
        + f"\n\nRoles: {roles}. Answers the dispute as it now is, with its ETag. An action "
        "the state does not allow answers 409 with the allowed actions."
    )
    return endpoint


for _action, _model in contract.ACTION_BODIES.items():
    router.add_api_route(
        action_path(_action),
        _action_endpoint(_action, _model),
        methods=["POST"],
        tags=["dispute actions"],
        summary=f"{_action} ({', '.join(sorted(action_roles_named(_action)))})",
        response_model=contract.Dispute,
        responses={
            **_ok(contract.Dispute, "the dispute as it now is", **_ETAG_HEADER),
            **COMMAND_PROBLEMS,
        },
    )


# For other services and dashboards -------------------------------------------------


@router.get(
    "/v1/events",
    tags=["feed"],
    summary="Every event of every dispute and order, in commit order (service, agent, auditor)",
    response_model=contract.EventFeed,
    responses=READ_PROBLEMS,
)
def event_feed(
    after: Annotated[
        int, Query(ge=0, le=contract.POSITION_MAX, description="the last position read")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    request_id: RequestId = None,
) -> Any: ...


WEBHOOK_PROBLEMS = {
    **{status: answer for status, answer in COMMAND_PROBLEMS.items() if status != 412},
    409: _problem("an Idempotency-Key reused with another body, or over 100 webhooks"),
    422: _problem(
        "invalid fields, each listed in errors (invalid_input): the url (https, public "
        "address, length), an unknown event type, the description's length"
    ),
}


@router.post(
    "/v1/webhooks",
    tags=["webhooks"],
    summary="Subscribe an endpoint to events (service)",
    description="Deliveries follow the Standard Webhooks specification: headers "
    "`webhook-id` (the event's id: deduplicate on it), `webhook-timestamp`, "
    "`webhook-signature` (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` with the "
    "secret). The body is `{type, timestamp, data}`; `data` holds `position`, `dispute_id` "
    "or `order_id`, `version` (the aggregate's, after the event: a gap shows a missed "
    "event), `event` (as in /v1/events) and `dispute` (or `order`) as it was after the "
    "event. One webhook receives events in position order, from the events committed "
    "after its creation. A 2xx answer within 10 s is a delivery; anything else is retried "
    "with growing back-off (5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, then every "
    "8 h), later events waiting behind it. The `secret` is in this answer only. Limits: "
    "`url` 2048 characters, `events` 1 to 50 distinct types, `description` 500 "
    "characters, 100 webhooks per service.",
    status_code=201,
    response_model=contract.WebhookCreated,
    responses={
        201: {"model": contract.WebhookCreated, "description": "created", "headers": _LOCATION},
        **WEBHOOK_PROBLEMS,
    },
)
def create_webhook(
    body: contract.WebhookCreate,
    request_id: RequestId = None,
    idempotency_key: IdempotencyKey = None,
) -> Any: ...


@router.get(
    "/v1/webhooks",
    tags=["webhooks"],
    summary="The caller's webhooks (service)",
    response_model=contract.WebhookList,
    responses=READ_PROBLEMS,
)
def list_webhooks(request_id: RequestId = None) -> Any: ...


@router.get(
    "/v1/webhooks/{webhook_id}",
    tags=["webhooks"],
    summary="One of the caller's webhooks (service)",
    response_model=contract.Webhook,
    responses=READ_PROBLEMS,
)
def get_webhook(webhook_id: str, request_id: RequestId = None) -> Any: ...


@router.delete(
    "/v1/webhooks/{webhook_id}",
    tags=["webhooks"],
    summary="Stop deliveries and forget the webhook and its log (service)",
    status_code=204,
    responses={204: {"description": "deleted"}, **READ_PROBLEMS},
)
def delete_webhook(webhook_id: str, request_id: RequestId = None) -> None: ...


@router.get(
    "/v1/webhooks/{webhook_id}/deliveries",
    tags=["webhooks"],
    summary="Every delivery attempt, newest first: status, answer code, time, next retry",
    response_model=contract.WebhookDeliveries,
    responses=READ_PROBLEMS,
)
def webhook_deliveries(
    webhook_id: str,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=contract.POSITION_MAX, description="`next_before` of a page")
    ] = None,
    request_id: RequestId = None,
) -> Any: ...


@router.post(
    "/v1/webhooks/{webhook_id}/replay",
    tags=["webhooks"],
    summary="Deliver again every wanted event after a position (service)",
    description="Moves the webhook's position back to `after` (at most the feed's last "
    "position): the events after it are delivered again, in order, with their own "
    "`webhook-id`s. Answers 202 with the webhook.",
    status_code=202,
    response_model=contract.Webhook,
    responses={
        202: {"model": contract.Webhook, "description": "replay started"},
        **WEBHOOK_PROBLEMS,
    },
)
def replay_webhook(
    webhook_id: str,
    body: contract.WebhookReplay,
    request_id: RequestId = None,
    idempotency_key: IdempotencyKey = None,
) -> Any: ...


@router.get(
    "/v1/state-machine",
    tags=["meta"],
    summary="The states, actions, transitions and a Mermaid diagram",
    response_model=contract.StateMachine,
    responses=COMMON_PROBLEMS,
)
def state_machine(request_id: RequestId = None) -> Any: ...


_LAG = (
    " Every answer carries `lag`: how far behind the event log (events, seconds) the projection is."
)


@router.get(
    "/v1/stats/sellers",
    tags=["stats"],
    summary="Per seller: disputes, outcomes, refund rate, response time (agent, auditor, service)",
    description="From the dashboard projection; with registered orders, the dispute rate "
    "and the mix of reasons." + _LAG,
    response_model=contract.SellerStatsList,
    responses=READ_PROBLEMS,
)
def seller_stats(
    seller_id: Annotated[contract.Id | None, Query(description="only this seller")] = None,
    request_id: RequestId = None,
) -> Any: ...


def _deadline_figure(path: str, summary: str) -> None:
    def figure(request_id: RequestId = None) -> Any: ...

    figure.__name__ = "stats_" + path.rsplit("/", 1)[-1].replace("-", "_")
    router.add_api_route(
        path,
        figure,
        methods=["GET"],
        tags=["stats"],
        summary=summary,
        description="From the dashboard projection." + _LAG,
        response_model=contract.DeadlineList,
        responses=READ_PROBLEMS,
    )


_deadline_figure("/v1/stats/deadlines-due", "Deadlines due in the next 24 h of the service clock")
_deadline_figure(
    "/v1/stats/sla-breaches", "Reviews and appeals past their ruling SLA (SLA breaches)"
)
_deadline_figure("/v1/stats/payouts-overdue", "Refunds not paid by their expected date")


@router.get(
    "/v1/stats/daily",
    tags=["stats"],
    summary="Per UTC day: opened by reason, entering each state, closed by outcome",
    description="At most 366 days at a time; days with anything only." + _LAG,
    response_model=contract.DailyCounts,
    responses=READ_PROBLEMS,
)
def daily_stats(
    from_: Annotated[
        contract.Day | None,
        Query(alias="from", description="first UTC day (default: 29 days before to)"),
    ] = None,
    to: Annotated[contract.Day | None, Query(description="last UTC day (default: today)")] = None,
    request_id: RequestId = None,
) -> Any: ...


@router.get(
    "/v1/stats/counts",
    tags=["stats"],
    summary="Disputes by state and by outcome",
    description="From the dashboard projection." + _LAG,
    response_model=contract.DisputeCounts,
    responses=READ_PROBLEMS,
)
def count_stats(request_id: RequestId = None) -> Any: ...


@router.get(
    "/v1/stats/appeals",
    tags=["stats"],
    summary="Appeals filed, and how often they overturn the first ruling",
    description="From the dashboard projection." + _LAG,
    response_model=contract.AppealFigures,
    responses=READ_PROBLEMS,
)
def appeal_stats(request_id: RequestId = None) -> Any: ...


@router.get(
    "/v1/stats/chargebacks",
    tags=["stats"],
    summary="Chargebacks, the disputes they closed, double recoveries and the amount at risk",
    description="From the dashboard projection." + _LAG,
    response_model=contract.ChargebackFigures,
    responses=READ_PROBLEMS,
)
def chargeback_stats(request_id: RequestId = None) -> Any: ...


# The Merkle log (auditor, agent) ---------------------------------------------------

TreeSize = Annotated[
    int | None,
    Query(ge=1, le=2**62, description="a signed checkpoint's tree size; default the newest"),
]


@router.get(
    "/v1/audit/checkpoint",
    tags=["audit"],
    summary="The newest signed checkpoint of the Merkle log over every event (agent, auditor)",
    description="A C2SP tlog-checkpoint in a C2SP signed note (Ed25519), as published "
    "outside the database. Keep it: later proofs are checked against it offline. 404 "
    "checkpoint_not_found before the first checkpoint; 409 checkpoint_invalid if a "
    "published checkpoint does not verify with the log's key.",
    response_model=contract.Checkpoint,
    responses=READ_PROBLEMS,
)
def audit_checkpoint(tree_size: TreeSize = None, request_id: RequestId = None) -> Any: ...


@router.get(
    "/v1/audit/inclusion",
    tags=["audit"],
    summary="RFC 9162 inclusion proof of one event in a signed checkpoint (agent, auditor)",
    response_model=contract.InclusionProof,
    responses=READ_PROBLEMS,
)
def audit_inclusion(
    aggregate_id: Annotated[str, Query(max_length=64, description="a dispute's or order's id")],
    version: Annotated[int, Query(ge=1, le=2**31 - 1)],
    tree_size: TreeSize = None,
    request_id: RequestId = None,
) -> Any: ...


@router.get(
    "/v1/audit/consistency",
    tags=["audit"],
    summary="RFC 9162 consistency proof between two tree sizes (agent, auditor)",
    description="`second` must be a signed checkpoint's size (default the newest).",
    response_model=contract.ConsistencyProof,
    responses=READ_PROBLEMS,
)
def audit_consistency(
    first: Annotated[int, Query(ge=1, le=2**62, description="the older tree size")],
    second: TreeSize = None,
    request_id: RequestId = None,
) -> Any: ...


# Sandbox time ----------------------------------------------------------------------


@router.post(
    "/v1/sandbox/clock",
    tags=["sandbox"],
    summary="Move the sandbox clock forward; returns once every due deadline has fired",
    description="Only with DISPUTES_SANDBOX=1 (agent, service); otherwise 404.",
    response_model=contract.SandboxClock,
    responses=COMMAND_PROBLEMS,
)
def advance_sandbox_clock(
    body: contract.SandboxClockAdvance, request_id: RequestId = None
) -> Any: ...


@router.get(
    "/v1/sandbox/clock",
    tags=["sandbox"],
    summary="The sandbox clock: its now and how far it is ahead of real time",
    description="Only with DISPUTES_SANDBOX=1 (any role); otherwise 404.",
    response_model=contract.SandboxClock,
    responses=READ_PROBLEMS,
)
def sandbox_clock(request_id: RequestId = None) -> Any: ...
