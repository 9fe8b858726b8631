"""The webhook subscriptions (service role): each service sees and manages only its own.

The subscriptions live in the events' database (services.dispute.delivery.store); the
delivery process (`python -m services.dispute.delivery`) delivers to them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from services.dispute.delivery.event_types import event_types
from services.dispute.delivery.store import (
    MAX_SUBSCRIPTIONS_PER_OWNER,
    Subscription,
    TooManySubscriptions,
    WebhookStore,
)
from services.dispute.delivery.urls import UnsafeDestination, check_url
from services.dispute.domain import Actor, InvalidInput, NotFound, RoleNotPermitted
from services.dispute.infrastructure.idempotency import StoredResponse
from shared import contract
from shared.permissions import may_command

from . import representations
from .dependencies import ActorDep, CallDep, SettingsDep
from .idempotency import run_plain, to_response
from .problems import ApiProblem
from .routes import PROBLEMS

webhooks_router = APIRouter(prefix="/v1", tags=["webhooks"])
EVENT_TYPES = frozenset(event_types())


def _store(request: Request) -> WebhookStore:
    store: WebhookStore = request.app.state.webhooks
    return store


def _service(actor: Actor, what: str) -> str:
    """The owner of the webhooks the caller manages: the calling service."""
    if not may_command(actor.role, "manage_webhooks"):
        raise RoleNotPermitted(what, actor.role)
    return actor.id


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def webhook_view(sub: Subscription) -> contract.Webhook:
    retrying = sub.attempts > 0
    return contract.Webhook(
        id=sub.id,
        url=sub.url,
        events=list(sub.events),
        description=sub.description,
        created_at=datetime.fromtimestamp(sub.created_at, UTC),
        position=sub.position,
        status="retrying" if retrying else "active",
        failing_since=_time(sub.failing_since),
        next_attempt_at=_time(sub.next_attempt_at) if retrying else None,
    )


def _find(store: WebhookStore, owner: str, webhook_id: str) -> Subscription:
    sub = store.get(owner, webhook_id)
    if sub is None:
        raise NotFound("webhook", webhook_id)
    return sub


def check_events(events: list[str]) -> list[str]:
    if "*" in events and len(events) > 1:
        raise InvalidInput("events", "all_alone", 'events: "*" stands alone, it means every type')
    for i, name in enumerate(events):
        if name != "*" and name not in EVENT_TYPES:
            raise InvalidInput(
                f"events[{i}]",
                "event_type",
                f"events[{i}]: {name[:64]!r} is not an event type; one of "
                + ", ".join(sorted(EVENT_TYPES)),
            )
    if len(set(events)) != len(events):
        raise InvalidInput("events", "unique", "events must not repeat a type")
    return events


@webhooks_router.post(
    "/webhooks", response_model=contract.WebhookCreated, status_code=201, responses=PROBLEMS
)
def create_webhook(
    body: contract.WebhookCreate, request: Request, call: CallDep, settings: SettingsDep
) -> Response:
    """Subscribes an endpoint to the events committed from now on; answers the signing
    secret, this once (and to a repeat with the same Idempotency-Key)."""
    owner = _service(call.actor, "subscribe to webhooks")

    def execute() -> StoredResponse:
        events = check_events(body.events)
        try:
            check_url(body.url, allow_private=settings.webhooks_allow_private)
        except UnsafeDestination as refused:
            raise InvalidInput("url", refused.rule, str(refused)) from None
        position = call.operations.head()
        try:
            sub = _store(request).create(
                owner, body.url, events, body.description, position=position, now=time.time()
            )
        except TooManySubscriptions:
            raise ApiProblem(
                409,
                "too_many_webhooks",
                "Too many webhooks",
                f"a service may have at most {MAX_SUBSCRIPTIONS_PER_OWNER} webhooks; delete one",
            ) from None
        created = contract.WebhookCreated(**webhook_view(sub).model_dump(), secret=sub.secret)
        return representations.json_reply(created, 201, {"Location": f"/v1/webhooks/{sub.id}"})

    return run_plain(request, call, execute)


@webhooks_router.get("/webhooks", response_model=contract.WebhookList, responses=PROBLEMS)
def list_webhooks(request: Request, actor: ActorDep) -> Response:
    """The caller's webhooks (never their secrets)."""
    owner = _service(actor, "list webhooks")
    subs = _store(request).owned(owner)
    return to_response(
        representations.json_reply(contract.WebhookList(webhooks=[webhook_view(s) for s in subs]))
    )


@webhooks_router.get("/webhooks/{webhook_id}", response_model=contract.Webhook, responses=PROBLEMS)
def get_webhook(webhook_id: str, request: Request, actor: ActorDep) -> Response:
    owner = _service(actor, "read webhooks")
    return to_response(
        representations.json_reply(webhook_view(_find(_store(request), owner, webhook_id)))
    )


@webhooks_router.delete("/webhooks/{webhook_id}", status_code=204, responses=PROBLEMS)
def delete_webhook(webhook_id: str, request: Request, actor: ActorDep) -> Response:
    """Stops deliveries and forgets the webhook and its delivery log."""
    owner = _service(actor, "delete webhooks")
    if not _store(request).delete(owner, webhook_id):
        raise NotFound("webhook", webhook_id)
    return Response(status_code=204)


@webhooks_router.get(
    "/webhooks/{webhook_id}/deliveries",
    response_model=contract.WebhookDeliveries,
    responses=PROBLEMS,
)
def webhook_deliveries(
    webhook_id: str,
    request: Request,
    actor: ActorDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=contract.POSITION_MAX, description="`next_before` of a page")
    ] = None,
) -> Response:
    """Every attempt, newest first: status, answer code, time, next retry."""
    owner = _service(actor, "read webhook deliveries")
    store = _store(request)
    _find(store, owner, webhook_id)
    logged = store.deliveries(webhook_id, limit=limit, before=before)
    page = contract.WebhookDeliveries(
        deliveries=[
            contract.WebhookDelivery(
                id=entry.id,
                event_id=entry.attempt.event_id,
                event_type=entry.attempt.event_type,
                position=entry.attempt.position,
                attempt=entry.attempt.attempt,
                status=entry.attempt.status,  # type: ignore[arg-type]
                response_code=entry.attempt.response_code,
                error=entry.attempt.error,
                at=datetime.fromtimestamp(entry.attempt.attempted_at, UTC),
                duration_ms=entry.attempt.duration_ms,
                next_retry_at=_time(entry.attempt.next_retry_at),
            )
            for entry in logged
        ],
        next_before=logged[-1].id if len(logged) == limit else None,
    )
    return to_response(representations.json_reply(page))


@webhooks_router.post(
    "/webhooks/{webhook_id}/replay",
    response_model=contract.Webhook,
    status_code=202,
    responses=PROBLEMS,
)
def replay_webhook(
    webhook_id: str, body: contract.WebhookReplay, request: Request, call: CallDep
) -> Response:
    """Delivers again, in order, every wanted event after `after` (same `webhook-id`s);
    what was due after that position is then delivered as usual."""
    owner = _service(call.actor, "replay webhooks")
    store = _store(request)

    def execute() -> StoredResponse:
        _find(store, owner, webhook_id)
        end = call.operations.head()
        if body.after > end:
            raise InvalidInput(
                "after", "maximum", f"after must be at most the feed's last position, {end}"
            )
        if not store.replay(owner, webhook_id, body.after, time.time()):
            raise NotFound("webhook", webhook_id)
        return representations.json_reply(webhook_view(_find(store, owner, webhook_id)), 202)

    return run_plain(request, call, execute)
