"""Who is calling, for which request: the reusable dependencies of the routes.

They are `async` because they do no I/O: FastAPI runs a plain `def` dependency in the
thread pool, a thread hop per dependency per request (several percent of the service's
CPU); the endpoints, which do the blocking storage work, stay plain `def`.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from services.dispute.application import DisputeApplication
from services.dispute.domain import Actor, InvalidInput, RoleNotPermitted
from services.dispute.domain.values import Role
from services.dispute.infrastructure.idempotency import IdempotencyStore
from services.dispute.operations import Operations
from services.dispute.settings import Settings
from shared.permissions import CALLER_ROLES, may_call

from .problems import bad_header, unauthenticated

# The gateway's token subjects (a principal id): the contract's id characters.
_PRINCIPAL = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_ETAG = re.compile(r'^(?:W/)?"?([0-9]{1,18})"?$')


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_application(request: Request) -> DisputeApplication:
    application: DisputeApplication = request.app.state.application
    return application


async def get_operations(request: Request) -> Operations:
    operations: Operations = request.app.state.operations
    return operations


SettingsDep = Annotated[Settings, Depends(get_settings)]
AppDep = Annotated[DisputeApplication, Depends(get_application)]
# The feed, readiness and verification reads of the application.
OperationsDep = Annotated[Operations, Depends(get_operations)]


async def authenticate(
    request: Request,
    settings: SettingsDep,
    x_internal_token: Annotated[str | None, Header()] = None,
    x_principal_role: Annotated[str | None, Header()] = None,
    x_principal_id: Annotated[str | None, Header()] = None,
) -> Actor:
    """The gateway vouches for the caller with the internal token."""
    return _actor(request, settings, x_internal_token, x_principal_role, x_principal_id)


def _actor(
    request: Request,
    settings: Settings,
    x_internal_token: str | None,
    x_principal_role: str | None,
    x_principal_id: str | None,
) -> Actor:
    expected = settings.service_token.get_secret_value().encode()
    if x_internal_token is None or not hmac.compare_digest(x_internal_token.encode(), expected):
        raise unauthenticated("a valid X-Internal-Token is required")
    if x_principal_role not in CALLER_ROLES:
        raise unauthenticated("X-Principal-Role must be one of: " + ", ".join(sorted(CALLER_ROLES)))
    if x_principal_id is None or not _PRINCIPAL.fullmatch(x_principal_id):
        raise unauthenticated("X-Principal-Id must be 1 to 128 of A-Z a-z 0-9 . _ : @ -")
    try:
        actor = Actor(Role(x_principal_role), x_principal_id)
    except InvalidInput:
        raise unauthenticated("X-Principal-Id is required") from None
    # The permission table decides who may call this route at all; a route it does not
    # list is refused to everyone.
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    if not may_call(actor.role, request.method, path):
        raise RoleNotPermitted(f"{request.method} {path}", actor.role)
    return actor


ActorDep = Annotated[Actor, Depends(authenticate)]


@dataclass(frozen=True)
class Call:
    """One authenticated request: who, which request, and its command headers."""

    application: DisputeApplication
    operations: Operations
    store: IdempotencyStore | None
    settings: Settings
    actor: Actor
    request_id: str
    method: str
    path: str
    body: bytes
    idempotency_key: str | None
    if_match: int | None

    @property
    def principal(self) -> str:
        return f"{self.actor.role}:{self.actor.id}"


def parse_if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.fullmatch(value.strip())
    if match is None:
        raise bad_header("If-Match", "etag", 'If-Match must be an ETag such as "7"')
    return int(match.group(1))


async def get_call(
    request: Request,
    idempotency_key: Annotated[str | None, Header()] = None,
    if_match: Annotated[str | None, Header()] = None,
    x_internal_token: Annotated[str | None, Header()] = None,
    x_principal_role: Annotated[str | None, Header()] = None,
    x_principal_id: Annotated[str | None, Header()] = None,
) -> Call:
    """The request as a command's call: one dependency, which reads what `authenticate`
    and the others would (each dependency FastAPI resolves costs a few percent of a
    command's CPU)."""
    state = request.app.state
    settings: Settings = state.settings
    operations: Operations = state.operations
    actor = _actor(request, settings, x_internal_token, x_principal_role, x_principal_id)
    body = await request.body()
    if idempotency_key is not None and not _KEY.fullmatch(idempotency_key):
        raise bad_header(
            "Idempotency-Key",
            "key",
            "Idempotency-Key must be 1 to 255 printable characters without spaces",
        )
    return Call(
        application=state.application,
        operations=operations,
        store=operations.idempotency_store,
        settings=settings,
        actor=actor,
        request_id=request.state.request_id,
        method=request.method,
        path=request.url.path,
        body=body,
        idempotency_key=idempotency_key,
        if_match=parse_if_match(if_match),
    )


CallDep = Annotated[Call, Depends(get_call)]
