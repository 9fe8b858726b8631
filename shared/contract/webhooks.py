"""Webhook subscriptions: the body that creates one, a replay, and the delivery log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, StrictInt, StrictStr

from .limits import POSITION_MAX, TEXT_PATTERN
from .values import Representation, RequestBody
from .vocabulary import DeliveryStatus, WebhookStatus

# A URL fits the usual 2 KiB of servers and proxies; a subscription names at most 50
# event types (there are fewer than 40) or "*"; a description is a note, not a document.
WEBHOOK_URL_MAX = 2048
WEBHOOK_EVENTS_MAX = 50
WEBHOOK_DESCRIPTION_MAX = 500
WEBHOOK_EVENT_TYPE_MAX = 64
WEBHOOKS_PER_SERVICE_MAX = 100  # subscriptions one service may hold


class WebhookCreate(RequestBody):
    """POST /v1/webhooks: subscribe an endpoint to events."""

    url: StrictStr = Field(
        min_length=1,
        max_length=WEBHOOK_URL_MAX,
        pattern=r"^[\x21-\x7e]+$",
        description="an https:// URL on a public address (plain http://, private and "
        "loopback addresses only with DISPUTES_WEBHOOKS_ALLOW_PRIVATE=1); redirects are "
        "not followed",
        examples=["https://payments.example/hooks/disputes"],
    )
    events: list[
        Annotated[
            StrictStr,
            Field(min_length=1, max_length=WEBHOOK_EVENT_TYPE_MAX, pattern=r"^(\*|[A-Za-z]+)$"),
        ]
    ] = Field(
        min_length=1,
        max_length=WEBHOOK_EVENTS_MAX,
        description='event types (the `type` of /v1/events), or ["*"] for all',
        examples=[["RefundStarted", "ReturnShipped"], ["*"]],
    )
    description: StrictStr | None = Field(
        default=None, max_length=WEBHOOK_DESCRIPTION_MAX, pattern=TEXT_PATTERN
    )


class WebhookReplay(RequestBody):
    """POST /v1/webhooks/{id}/replay: deliver again everything after a position."""

    after: StrictInt = Field(
        ge=0,
        le=POSITION_MAX,
        description="a feed position; every wanted event after it is delivered again",
    )


class Webhook(Representation):
    id: str
    url: str
    events: list[str]
    description: str | None
    created_at: datetime
    position: int = Field(description="the last feed position delivered (or not wanted)")
    status: WebhookStatus = Field(
        description="`retrying`: the next event failed and waits for its retry"
    )
    failing_since: datetime | None
    next_attempt_at: datetime | None = Field(description="when retrying: the next attempt")


class WebhookCreated(Webhook):
    secret: str = Field(
        description="the signing secret (`whsec_` + base64): shown only in this answer"
    )


class WebhookList(Representation):
    webhooks: list[Webhook]


class WebhookDelivery(Representation):
    """One delivery attempt."""

    id: int
    event_id: str = Field(description="the event's id, the attempt's `webhook-id`")
    event_type: str
    position: int
    attempt: int = Field(description="1 for the first attempt at this event")
    status: DeliveryStatus
    response_code: int | None = Field(description="the endpoint's answer, if any")
    error: str | None
    at: datetime = Field(description="when the attempt started")
    duration_ms: int
    next_retry_at: datetime | None = Field(description="failed: when it is tried again")


class WebhookDeliveries(Representation):
    deliveries: list[WebhookDelivery] = Field(description="newest first")
    next_before: int | None = Field(description="pass as ?before= for older ones")
