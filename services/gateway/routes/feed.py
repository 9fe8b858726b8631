"""What other services follow: the feed of every event, and webhooks that push it."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.

from typing import Annotated, Any

from fastapi import Query

from shared import contract

from .common import (
    COMMAND_PROBLEMS,
    LOCATION,
    READ_PROBLEMS,
    IdempotencyKey,
    RequestId,
    forwarding_router,
    problem,
    roles,
)

router = forwarding_router()

EVENTS = "/v1/events"
WEBHOOKS = "/v1/webhooks"
WEBHOOK = WEBHOOKS + "/{webhook_id}"


@router.get(
    EVENTS,
    tags=["feed"],
    # The roles in the order the feed's readers were added (the permission table pins
    # them: tests/integration/test_gateway_routes.py).
    summary="Every event of every dispute and order, in commit order (service, agent, auditor)",
    response_model=contract.EventFeed,
    responses=READ_PROBLEMS,
)
def event_feed(
    after: Annotated[contract.FeedPosition, Query(description="the last position read")] = 0,
    limit: Annotated[contract.FeedLimit, Query()] = contract.FEED_LIMIT_DEFAULT,
    request_id: RequestId = None,
) -> Any: ...


WEBHOOK_PROBLEMS = {
    **{status: answer for status, answer in COMMAND_PROBLEMS.items() if status != 412},
    409: problem(
        "an Idempotency-Key reused with another body, or over "
        f"{contract.WEBHOOKS_PER_SERVICE_MAX} webhooks"
    ),
    422: problem(
        "invalid fields, each listed in errors (invalid_input): the url (https, public "
        "address, length), an unknown event type, the description's length"
    ),
}


@router.post(
    WEBHOOKS,
    tags=["webhooks"],
    summary=f"Subscribe an endpoint to events ({roles('POST', WEBHOOKS)})",
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
    f"`url` {contract.WEBHOOK_URL_MAX} characters, `events` 1 to "
    f"{contract.WEBHOOK_EVENTS_MAX} distinct types, `description` "
    f"{contract.WEBHOOK_DESCRIPTION_MAX} characters, {contract.WEBHOOKS_PER_SERVICE_MAX} "
    "webhooks per service.",
    status_code=201,
    response_model=contract.WebhookCreated,
    responses={
        201: {"model": contract.WebhookCreated, "description": "created", "headers": LOCATION},
        **WEBHOOK_PROBLEMS,
    },
)
def create_webhook(
    body: contract.WebhookCreate,
    request_id: RequestId = None,
    idempotency_key: IdempotencyKey = None,
) -> Any: ...


@router.get(
    WEBHOOKS,
    tags=["webhooks"],
    summary=f"The caller's webhooks ({roles('GET', WEBHOOKS)})",
    response_model=contract.WebhookList,
    responses=READ_PROBLEMS,
)
def list_webhooks(request_id: RequestId = None) -> Any: ...


@router.get(
    WEBHOOK,
    tags=["webhooks"],
    summary=f"One of the caller's webhooks ({roles('GET', WEBHOOK)})",
    response_model=contract.Webhook,
    responses=READ_PROBLEMS,
)
def get_webhook(webhook_id: str, request_id: RequestId = None) -> Any: ...


@router.delete(
    WEBHOOK,
    tags=["webhooks"],
    summary=f"Stop deliveries and forget the webhook and its log ({roles('DELETE', WEBHOOK)})",
    status_code=204,
    responses={204: {"description": "deleted"}, **READ_PROBLEMS},
)
def delete_webhook(webhook_id: str, request_id: RequestId = None) -> None: ...


@router.get(
    WEBHOOK + "/deliveries",
    tags=["webhooks"],
    summary="Every delivery attempt, newest first: status, answer code, time, next retry",
    response_model=contract.WebhookDeliveries,
    responses=READ_PROBLEMS,
)
def webhook_deliveries(
    webhook_id: str,
    limit: Annotated[contract.DeliveriesLimit, Query()] = contract.DELIVERIES_LIMIT_DEFAULT,
    before: Annotated[
        contract.PageBefore | None, Query(description="`next_before` of a page")
    ] = None,
    request_id: RequestId = None,
) -> Any: ...


@router.post(
    WEBHOOK + "/replay",
    tags=["webhooks"],
    summary="Deliver again every wanted event after a position "
    f"({roles('POST', WEBHOOK + '/replay')})",
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
