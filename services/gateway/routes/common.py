"""What every public route shares: the forwarding route class, the bearer scheme, the
request headers, the problems each kind of route may answer, and the roles that the
permission table lets call a route (for its summary).

Every public route is a `ForwardingRoute`: FastAPI reads the endpoint's signature (path
and query parameters, body model, response model, problems) to describe the route, but
the request is never parsed here. The route's handler is the `Forwarder`, which checks
the caller against the permission table and relays the raw request to the dispute
service, where the body is validated once. So the endpoint functions are descriptions and
are never called.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from shared import contract
from shared.permissions import route_roles


class ForwardingRoute(APIRoute):
    """A public route whose handler forwards to the dispute service."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        (method,) = self.methods or {"GET"}
        roles = route_roles(method, self.path)

        async def forward(request: Request) -> Response:
            response: Response = await request.app.state.forwarder(request, roles)
            return response

        return forward


def forwarding_router() -> APIRouter:
    """A router of public routes (the bearer scheme is added where they are assembled)."""
    return APIRouter(route_class=ForwardingRoute)


def roles(method: str, path: str) -> str:
    """Who the permission table lets call a route, for its summary: `agent, auditor`."""
    return ", ".join(sorted(route_roles(method, path)))


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
        max_length=contract.IDEMPOTENCY_KEY_MAX,
        pattern=contract.IDEMPOTENCY_KEY_PATTERN,
        description="a repeat with the same key and body returns the first response and "
        "does nothing new; the same key with another method, path or body answers 422 "
        "idempotency_key_reused; kept at least 24 hours",
    ),
]
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=contract.IF_MATCH_PATTERN,
        description='the version you expect, e.g. "7" (or *); another current version answers 412',
    ),
]


def problem(description: str) -> dict[str, Any]:
    return {
        "model": contract.Problem,
        "description": description,
        "content": {contract.PROBLEM_MEDIA_TYPE: {}},
    }


ID_HEADER = {"X-Request-ID": {"description": "the request's id", "schema": {"type": "string"}}}
ETAG_HEADER = {"ETag": {"description": 'the version, e.g. "7"', "schema": {"type": "string"}}}
LOCATION = {"Location": {"description": "the new resource", "schema": {"type": "string"}}}

COMMON_PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: problem("a path with '.' or '..' segments or an encoded slash (invalid_path)"),
    401: problem("no token, or a bad one (unauthenticated)"),
    403: problem("the caller's role may not do this (role_not_permitted)"),
    429: problem(
        "over the principal's rate limit, or the address's without valid credentials; "
        "see Retry-After (rate_limited)"
    ),
    431: problem("the request headers are over the size limit (headers_too_large)"),
    503: problem("the dispute service is unavailable (upstream_unavailable, unavailable)"),
    504: problem("the dispute service did not answer in time (upstream_timeout)"),
}
READ_PROBLEMS = {
    **COMMON_PROBLEMS,
    404: problem("no such resource, or not the caller's (not_found...)"),
    422: problem("invalid query parameters (invalid_input)"),
}
COMMAND_PROBLEMS = {
    **READ_PROBLEMS,
    409: problem(
        "the state does not allow it (action_not_allowed, with allowed_actions), a "
        "concurrent update, or a request with the same Idempotency-Key still running "
        "(idempotency_in_progress)"
    ),
    412: problem("If-Match names another version (version_mismatch)"),
    408: problem("the body did not arrive in time (request_timeout)"),
    413: problem("the body is over the size limit (payload_too_large)"),
    415: problem("the body is not sent as application/json (unsupported_media_type)"),
    422: problem(
        "invalid fields, each listed in errors (invalid_input), a rule of buyer "
        "protection (protection_ended, reason_not_covered), or an Idempotency-Key "
        "already used for another request (idempotency_key_reused)"
    ),
}


def ok(model: type[BaseModel], description: str, **headers: Any) -> dict[int | str, Any]:
    return {200: {"model": model, "description": description, "headers": headers}}
