"""Errors as RFC 9457 problem details: every exception is mapped to HTTP here, once.

Each kind of error has a stable `type` URI, `https://disputes.internal/problems/<code>`,
where `code` is the domain error's `code` (or the API's own, below). `detail` is the
domain's message, written for a person.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.dispute.domain import (
    ActionNotAllowed,
    ChargebackExists,
    ConcurrentUpdate,
    DisputeAlreadyExists,
    DomainError,
    ExtensionRefused,
    InvalidInput,
    NotFound,
    OrderAlreadyShipped,
    OrderChargedBack,
    OrderFactsConflict,
    ProtectionEnded,
    ReasonNotCovered,
    RoleNotPermitted,
    VersionMismatch,
)
from services.dispute.infrastructure.idempotency import StoredResponse
from services.dispute.infrastructure.pool import DatabaseUnavailable, OutcomeUnknown
from shared.contract import PROBLEM_MEDIA_TYPE, FieldError, Problem, problem_type
from shared.http import allowed_methods

log = logging.getLogger("services.dispute.api")


class ApiProblem(Exception):
    """A refusal of the HTTP layer itself (authentication, idempotency, unknown paths)."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str,
        *,
        errors: Sequence[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.errors = list(errors) if errors is not None else None
        self.headers = dict(headers or {})


def unauthenticated(detail: str) -> ApiProblem:
    return ApiProblem(401, "unauthenticated", "Not authenticated", detail)


def unknown_action(action: str) -> ApiProblem:
    return ApiProblem(
        404, "unknown_action", "Unknown action", f"{action!r} is not an action of a dispute"
    )


def bad_header(name: str, rule: str, message: str) -> ApiProblem:
    return ApiProblem(
        422,
        "invalid_input",
        "Invalid input",
        message,
        errors=[FieldError(field=name, rule=rule, message=message)],
    )


# The one table: domain error class -> status and title. First match wins (subclasses first).
DOMAIN_STATUS: list[tuple[type[DomainError], int, str]] = [
    (ReasonNotCovered, 422, "Reason not covered by buyer protection"),
    (OrderAlreadyShipped, 422, "Order already shipped"),
    (InvalidInput, 422, "Invalid input"),
    (ProtectionEnded, 422, "Buyer protection ended"),
    (RoleNotPermitted, 403, "Role not permitted"),
    (NotFound, 404, "Not found"),
    (ActionNotAllowed, 409, "Action not allowed now"),
    (DisputeAlreadyExists, 409, "Dispute already exists"),
    (OrderFactsConflict, 409, "Order facts conflict"),
    (ExtensionRefused, 409, "Protection extension refused"),
    (OrderChargedBack, 409, "Order charged back"),
    (ChargebackExists, 409, "Chargeback already recorded"),
    (ConcurrentUpdate, 409, "Concurrent update"),
    (VersionMismatch, 412, "Version mismatch"),
    (DomainError, 400, "Refused"),
]

# Pydantic's error types as the rules our problems name (the domain's own vocabulary).
VALIDATION_RULES: dict[str, str] = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "literal_error": "one_of",
    "enum": "one_of",
    "int_type": "integer",
    "int_parsing": "integer",
    "string_type": "string",
    "string_too_short": "required",
    "string_too_long": "max_length",
    "string_pattern_mismatch": "pattern",
    "bool_type": "boolean",
    "float_type": "number",
    "greater_than_equal": "minimum",
    "greater_than": "minimum",
    "less_than_equal": "maximum",
    "timezone_aware": "timezone",
    "datetime_type": "date_time",
    "datetime_parsing": "date_time",
    "datetime_from_date_parsing": "date_time",
    "model_type": "object",
    "model_attributes_type": "object",
    "dict_type": "object",
    "list_type": "array",
    "too_short": "min_items",
    "too_long": "max_items",
    "time_range": "time_range",
    "json_invalid": "json",
}


def status_of(error: DomainError) -> tuple[int, str]:
    for cls, status, title in DOMAIN_STATUS:
        if isinstance(error, cls):
            return status, title
    raise AssertionError("DomainError is in the table")  # pragma: no cover


def problem_body(
    request: Request,
    status: int,
    code: str,
    title: str,
    detail: str,
    **extra: Any,
) -> Problem:
    return Problem(
        type=problem_type(code),
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        request_id=getattr(request.state, "request_id", None),
        **extra,
    )


def domain_problem(request: Request, error: DomainError) -> Problem:
    status, title = status_of(error)
    extra: dict[str, Any] = {}
    if isinstance(error, InvalidInput):
        extra["errors"] = [FieldError(field=error.field, rule=error.rule, message=error.message)]
    if isinstance(error, ActionNotAllowed):
        extra["allowed_actions"] = error.allowed
    return problem_body(request, status, error.code, title, error.message, **extra)


def problem_response(problem: Problem, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        content=problem.model_dump_json(exclude_none=True, by_alias=True),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def stored_problem(problem: Problem) -> StoredResponse:
    """A refusal as the response stored under an idempotency key."""
    return StoredResponse(
        status=problem.status,
        headers={"Content-Type": PROBLEM_MEDIA_TYPE},
        body=problem.model_dump_json(exclude_none=True, by_alias=True).encode(),
    )


def _field_path(loc: Sequence[int | str]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        where = parts.pop(0)
        if not parts:
            return str(where)
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def validation_errors(exc: RequestValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":  # loc is ("body", the offending offset)
            where = err.get("loc", ("body", 0))[-1]
            reason = (err.get("ctx") or {}).get("error", "invalid")
            message = f"body: not valid JSON at character {where} ({reason})"
            errors.append(FieldError(field="body", rule="json", message=message))
            continue
        rule = VALIDATION_RULES.get(err.get("type", ""), err.get("type", "invalid"))
        field = _field_path(err.get("loc", ()))
        message = str(err.get("msg", "invalid"))
        if rule == "unknown_field":
            message = f"{field} is not a field of this request"
        errors.append(FieldError(field=field, rule=rule, message=f"{field}: {message}"))
    return errors


def install(app: FastAPI) -> None:
    """Registers the handlers that turn every exception into a problem response."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        return problem_response(domain_problem(request, exc))

    @app.exception_handler(ApiProblem)
    async def _api(request: Request, exc: ApiProblem) -> Response:
        problem = problem_body(
            request, exc.status, exc.code, exc.title, exc.detail, errors=exc.errors
        )
        return problem_response(problem, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type and media_type != "application/json" and not media_type.endswith("+json"):
            problem = problem_body(
                request,
                415,
                "unsupported_media_type",
                "Unsupported media type",
                f"the body must be application/json, not {media_type[:100]}",
            )
            return problem_response(problem)
        errors = validation_errors(exc)
        detail = "the request has invalid fields: " + ", ".join(sorted({e.field for e in errors}))
        problem = problem_body(request, 422, "invalid_input", "Invalid input", detail)
        problem.errors = errors
        return problem_response(problem)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        detail = exc.detail if isinstance(exc.detail, str) else title
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            detail = f"{request.url.path} was not found"
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(app.router.routes, request.scope)
            detail = f"{request.method} is not allowed on {request.url.path}"
            detail += f"; allowed: {headers['Allow']}"
        problem = problem_body(request, exc.status_code, code, title, detail)
        return problem_response(problem, headers)

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    @app.exception_handler(DatabaseUnavailable)
    async def _unavailable(request: Request, exc: Exception) -> Response:
        # One line per outage is logged by the connection pool; per request, debug only.
        log.debug("storage unavailable: %s", exc)
        problem = problem_body(
            request,
            503,
            "unavailable",
            "Service unavailable",
            "the event store is unavailable or busy; retry shortly with the same Idempotency-Key",
        )
        return problem_response(problem, {"Retry-After": "1"})

    @app.exception_handler(OutcomeUnknown)
    async def _outcome_unknown(request: Request, exc: Exception) -> Response:
        log.warning("outcome unknown: %s", exc)
        problem = problem_body(
            request,
            503,
            "unavailable",
            "Service unavailable",
            "the connection to the event store broke while the command was being recorded: "
            "it may or may not have taken effect; retry with the same Idempotency-Key to "
            "learn which (a retry without a key may act twice)",
        )
        return problem_response(problem, {"Retry-After": "1"})
