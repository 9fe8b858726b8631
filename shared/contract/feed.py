"""Events: a dispute's history, and the global feed of every event in commit order."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from .values import Actor, Representation
from .vocabulary import Stream


class Event(Representation):
    """One event of a dispute's history."""

    id: str = Field(
        description="unique and stable; the `webhook-id` and `Nats-Msg-Id` of its deliveries"
    )
    version: int
    type: str
    at: datetime
    actor: Actor
    request_id: str | None
    traceparent: str | None = Field(
        default=None, description="the W3C trace context of the request that caused it"
    )
    payload: dict[str, Any]


class DisputeHistory(Representation):
    dispute_id: str
    events: list[Event]


class FeedEvent(Event):
    """One event of the global log, in commit order."""

    position: int = Field(description="resume with ?after=<position>")
    stream: Stream
    stream_id: str = Field(description="the dispute's id, or the order's marketplace id")


class EventFeed(Representation):
    events: list[FeedEvent]
    next_after: int | None = Field(
        description="pass as ?after= to read on; the given `after` when nothing is new"
    )
