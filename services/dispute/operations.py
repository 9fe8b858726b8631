"""What the HTTP layer asks of the service besides commands and dispute queries: the
event feed, readiness, the stored history a verification checks, the events' database
(the Merkle tree's tables live beside them), and the store of idempotent responses.
The service's wiring (api/app.py) makes one per application, so the routes never reach
for the recorder, the mapper or the repository themselves.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import StoredEvent

from shared.permissions import SEES_EVERYTHING

from .audit import read_chain
from .domain import Actor, Dispute, DisputeNotFound, Order
from .infrastructure.idempotency import IdempotencyStore
from .quarantine import Quarantine

if TYPE_CHECKING:
    from .application import DisputeApplication


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One event of the feed, at its position, and the stream it belongs to (a
    dispute's id, or an order's reference)."""

    position: int
    event: DomainEventProtocol[UUID]
    stream: Literal["dispute", "order"]
    stream_id: str


@dataclass(frozen=True, slots=True)
class FeedPage:
    entries: list[FeedEntry]
    next_after: int


@dataclass(frozen=True, slots=True)
class StoredHistory:
    """A dispute's events as stored (not decoded: a tampered one may not decode), and
    their recorded hashes by version."""

    aggregate_id: UUID
    events: list[StoredEvent]
    hashes: dict[int, bytes]


class Operations:
    def __init__(self, application: DisputeApplication) -> None:
        self._app = application
        self._lock = threading.Lock()
        self._quarantine: Quarantine | None = None

    def feed(self, after: int, limit: int) -> FeedPage:
        """Every event of every dispute and order after position `after`, in commit order."""
        app = self._app
        notifications = app.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        order_refs: dict[UUID, str] = {}
        entries = []
        for notification in notifications:
            event = app.mapper.to_domain_event(notification)
            if isinstance(event, Dispute.Event):
                entries.append(
                    FeedEntry(notification.id, event, "dispute", str(event.originator_id))
                )
                continue
            if event.originator_id not in order_refs:
                order: Order = app.repository.get(event.originator_id)
                order_refs[event.originator_id] = order.order_ref
            entries.append(
                FeedEntry(notification.id, event, "order", order_refs[event.originator_id])
            )
        return FeedPage(entries, notifications[-1].id if notifications else after)

    def head(self) -> int:
        """The feed's last position (0 while it is empty)."""
        return self._app.recorder.max_notification_id() or 0

    def readiness(self) -> int:
        """Raises unless the event store answers; otherwise how many events the readers
        (worker, projector, delivery, notary) set aside."""
        self._app.recorder.max_notification_id()
        with self._lock:
            if self._quarantine is None:
                self._quarantine = Quarantine(self._app)
            quarantine = self._quarantine
        return quarantine.count()

    def stored_history(self, actor: Actor, ref: str) -> StoredHistory:
        """A dispute's stored events and hashes, for verification. A party sees its own
        disputes only (not found otherwise); the others see every dispute."""
        if actor.role not in SEES_EVERYTHING:
            aggregate_id = self._app.get_dispute(actor, ref).id
        else:
            try:
                aggregate_id = UUID(ref)
            except ValueError:
                raise DisputeNotFound(ref) from None
        events, hashes = read_chain(self._app.recorder, aggregate_id)
        if events and ".dispute:" not in events[0].topic.lower():
            raise DisputeNotFound(ref)  # an order's history
        return StoredHistory(aggregate_id, events, hashes)

    @property
    def datastore(self) -> Any:
        """The events' database (SQLite or PostgreSQL), for the tables kept beside them."""
        return getattr(self._app.recorder, "datastore")  # noqa: B009

    @property
    def idempotency_store(self) -> IdempotencyStore | None:
        """The recorder, when it also stores idempotent responses (the service's
        recorders do; the library's in-memory one does not)."""
        recorder = self._app.recorder
        return recorder if isinstance(recorder, IdempotencyStore) else None
