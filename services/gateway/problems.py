"""The gateway's own refusals as RFC 9457 problem details, mapped to HTTP in one place.

Problems the dispute service answers are relayed as they are; these are the ones the
gateway answers itself, before (or instead of) forwarding.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from shared.contract import PROBLEM_MEDIA_TYPE, Problem, problem_type
from shared.http import allowed_methods


@dataclass
class GatewayProblem(Exception):
    status: int
    code: str
    title: str
    detail: str
    headers: Mapping[str, str] = field(default_factory=dict)


# code -> (status, title): every kind of problem the gateway itself answers.
GATEWAY_PROBLEMS: dict[str, tuple[int, str]] = {
    "invalid_path": (400, "Invalid path"),
    "incomplete_body": (400, "Request body incomplete"),
    "unauthenticated": (401, "Not authenticated"),
    "role_not_permitted": (403, "Role not permitted"),
    "not_found": (404, "Not found"),
    "method_not_allowed": (405, "Method not allowed"),
    "request_timeout": (408, "Request body not received in time"),
    "payload_too_large": (413, "Request body too large"),
    "headers_too_large": (431, "Request headers too large"),
    "rate_limited": (429, "Too many requests"),
    "upstream_unavailable": (503, "Dispute service unavailable"),
    "upstream_timeout": (504, "Dispute service timed out"),
}


def gateway_problem(
    code: str, detail: str, headers: Mapping[str, str] | None = None
) -> GatewayProblem:
    status, title = GATEWAY_PROBLEMS[code]
    return GatewayProblem(status, code, title, detail, dict(headers or {}))


def problem_response(problem: GatewayProblem, request: Request) -> Response:
    body = Problem(
        type=problem_type(problem.code),
        title=problem.title,
        status=problem.status,
        detail=problem.detail,
        instance=request.url.path,
        request_id=getattr(request.state, "request_id", None),
    )
    return Response(
        body.model_dump_json(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(problem.headers),
    )


def gateway_problem_response(scope: Scope, code: str, detail: str) -> Response:
    """A problem answered before routing (no Request yet)."""
    return problem_response(gateway_problem(code, detail), Request(scope))


def install(app: FastAPI) -> None:
    @app.exception_handler(GatewayProblem)
    async def _gateway_problem(request: Request, exc: GatewayProblem) -> Response:
        return problem_response(exc, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http_problem(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            allow = allowed_methods(app.router.routes, request.scope)
            problem = gateway_problem(
                "method_not_allowed",
                f"{request.method} is not allowed on {request.url.path}; allowed: {allow}",
                {**(exc.headers or {}), "Allow": allow},
            )
        else:
            problem = gateway_problem("not_found", f"{request.url.path} was not found")
        return problem_response(problem, request)
