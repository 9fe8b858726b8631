"""An event as both deliveries carry it (webhooks and JetStream).

    {"type": <event type>, "timestamp": <the event's time>,
     "data": {"position", "dispute_id" | "order_id", "version", "event" (as in /v1/events),
              "dispute" (the dispute as it was after the event, dispute events) |
              "order" (the order as it was after the event, order events)}}

So a receiver needs no read-back, sees a gap in `version` per aggregate, and resumes or
replays by `position`. Built once per event and shared by every subscription (`Payloads`
keeps the latest few hundred). Each aggregate is not read back from the store for every
event: the one built for the previous version is carried forward by the event.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification

from services.dispute.api import representations
from services.dispute.application import DisputeApplication
from services.dispute.domain import Actor, Dispute, Order, Role

from .event_types import event_type_of, event_types

__all__ = ["Payload", "Payloads", "event_type_of", "event_types"]

log = logging.getLogger("services.dispute.delivery")

# Whose eyes the embedded dispute is shown through: a service's (no party's view).
SUBSCRIBER = Actor(Role.SERVICE, "webhooks")
KEPT = 512
AGGREGATES_KEPT = 5000


@dataclass(frozen=True)
class Payload:
    event_id: str
    position: int
    event_type: str
    aggregate_id: str  # the dispute's id, or the order's id in the store (a UUID)
    stream: str  # "dispute" or "order"
    stream_id: str  # the dispute's id, or the order's marketplace id
    version: int
    event_at: float  # seconds since the epoch
    body: bytes  # the JSON body, exactly as signed


def undecodable(notification: Notification) -> Payload:
    """What is known of an event without decoding it: where it is, its id and type."""
    event_type = event_type_of(notification.topic)
    version = notification.originator_version
    event = {
        "id": representations.event_id(notification.originator_id, version),
        "version": version,
        "type": event_type,
        "position": notification.id,
        "undecodable": True,
    }
    aggregate_id = str(UUID(str(notification.originator_id)))
    stream = "dispute" if ":Dispute." in notification.topic else "order"
    key = "dispute_id" if stream == "dispute" else "aggregate_id"
    data = {"position": notification.id, key: aggregate_id, "version": version, "event": event}
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")  # no event time to give
    body = {"type": event_type, "timestamp": now, "data": data}
    return Payload(
        event_id=str(event["id"]), position=notification.id, event_type=event_type,
        aggregate_id=aggregate_id, stream=stream, stream_id=aggregate_id, version=version,
        event_at=time.time(), body=json.dumps(body, separators=(",", ":")).encode(),
    )  # fmt: skip


class Payloads:
    def __init__(self, app: DisputeApplication, kept: int = KEPT) -> None:
        self.app = app
        self.kept = kept
        self._cache: OrderedDict[int, Payload] = OrderedDict()
        self._aggregates: OrderedDict[Any, Any] = OrderedDict()  # the latest built, by id
        self._lock = threading.Lock()

    def of(self, notification: Notification) -> Payload:
        with self._lock:
            cached = self._cache.get(notification.id)
        if cached is not None:
            return cached
        try:
            payload = self.build(notification)
        except Exception:  # an event this code cannot read must not stop the deliveries
            log.exception("event at position %d could not be decoded", notification.id)
            payload = undecodable(notification)
        with self._lock:
            self._cache[notification.id] = payload
            while len(self._cache) > self.kept:
                self._cache.popitem(last=False)
        return payload

    def aggregate_after(self, event: Any) -> Any:
        """The event's aggregate as it was right after it: the aggregate built for the
        previous version, with this event applied (replay has no side effects), or else
        read from the store at this version."""
        key, version = event.originator_id, event.originator_version
        with self._lock:
            cached = self._aggregates.pop(key, None)
        if version == 1:
            aggregate = event.mutate(None)
        elif cached is not None and cached.version == version - 1:
            aggregate = event.mutate(cached)  # in place: nobody else holds `cached`
        else:
            aggregate = self.app.repository.get(key, version=version)
        with self._lock:
            self._aggregates[key] = aggregate
            while len(self._aggregates) > AGGREGATES_KEPT:
                self._aggregates.popitem(last=False)
        return aggregate

    def build(self, notification: Notification) -> Payload:
        app = self.app
        event: Any = app.mapper.to_domain_event(notification)
        version = event.originator_version
        data: dict[str, Any] = {"position": notification.id}
        if isinstance(event, Dispute.Event):
            dispute: Dispute = self.aggregate_after(event)
            data["dispute_id"] = str(event.originator_id)
            aggregate: dict[str, Any] = {
                "dispute": representations.dispute_view(dispute, SUBSCRIBER, historical=True)
            }
            order_ref = dispute.order_ref
        else:
            order: Order = self.aggregate_after(event)
            data["order_id"] = order.order_ref
            aggregate = {"order": representations.order_view(order)}
            order_ref = order.order_ref
        data["version"] = version
        feed_event = representations.feed_event_view(notification.id, event, lambda _: order_ref)
        data["event"] = json.loads(representations.dumps(feed_event))
        for key, model in aggregate.items():
            data[key] = json.loads(representations.dumps(model))
        body = {"type": feed_event.type, "timestamp": data["event"]["at"], "data": data}
        return Payload(
            event_id=feed_event.id,
            position=notification.id,
            event_type=feed_event.type,
            aggregate_id=str(UUID(str(event.originator_id))),
            stream=feed_event.stream,
            stream_id=feed_event.stream_id,
            version=version,
            event_at=event.timestamp.timestamp(),
            body=json.dumps(body, separators=(",", ":")).encode(),
        )
