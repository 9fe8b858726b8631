"""The pending-deadline projection: one row per dispute with a pending time-out.

`dispute_pending_deadlines` (through the backend's `PendingDeadlineRecorder`) holds the
dispute, when its earliest time-out falls due, the event version that row was computed
from, and when to look at it next. `PendingDeadlines` follows the application's ordered
notification log from a position stored in `dispute_scheduler_tracking`, and every batch
updates the rows and the position in ONE transaction: a crash never loses nor applies an
event twice. Several followers (threads or processes, any replica) may run at once: each
batch first locks the position. An event this code cannot read is quarantined
(services.dispute.quarantine), not a reason to stop.

Which deadlines have a time-out comes from `rules.DEADLINES`, never from this module.
The scheduler (services.dispute.scheduler) fires what falls due.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, cast
from uuid import UUID

from eventsourcing.utils import resolve_topic

from shared.clock import Clock

from .application import DisputeApplication
from .domain import Dispute, rules
from .domain.state import DeadlineData
from .infrastructure.backend import recorders_of
from .infrastructure.deadlines import PENDING_TABLE, TRACKING_TABLE
from .quarantine import Quarantine

__all__ = ["PENDING_TABLE", "TRACKER_NAME", "TRACKING_TABLE", "PendingDeadlines", "PendingRow"]

TRACKER_NAME = "deadline-scheduler"


@dataclass(frozen=True)
class PendingRow:
    """What the events say about one dispute: its earliest time-out and the version of
    the event that said so."""

    due_at: datetime
    version: int


@dataclass(frozen=True)
class _DeadlineFacts:
    deadlines: list[DeadlineData]


def pending_row(event: Dispute.Event) -> PendingRow | None:
    """The row an event leaves for its dispute (None: no pending time-out)."""
    due_at = rules.next_timeout_at(cast(Any, _DeadlineFacts(list(event.deadlines))))
    if due_at is None:
        return None
    return PendingRow(due_at=due_at, version=event.originator_version)


@cache
def _is_dispute_topic(topic: str) -> bool:
    # An event class this code does not know raises (TopicError): the sync fails loudly
    # and keeps its position rather than skip an event that may carry a deadline.
    cls = resolve_topic(topic)
    return isinstance(cls, type) and issubclass(cls, Dispute.Event)


class PendingDeadlines:
    """Keeps the pending-deadline table from the events.

    `app` is a DisputeApplication; `clock` the clock "due" is measured by (the default,
    `app.clock`).
    """

    def __init__(
        self, app: DisputeApplication, clock: Clock | None = None, *, batch_size: int = 500
    ) -> None:
        self.app = app
        self.clock: Clock = clock or app.clock
        self.batch_size = batch_size
        self.recorder = recorders_of(app).pending_deadline_recorder()
        self.recorder.create_tables(TRACKER_NAME)
        self.quarantine = Quarantine(app)

    # Following the log -------------------------------------------------------------------

    def position(self) -> int:
        """The last notification id applied to the table."""
        return self.recorder.position(TRACKER_NAME)

    def sync(self) -> int:
        """Applies every event recorded since the tracked position; returns how many
        notifications were consumed. Each batch updates the table and the position in
        one transaction."""
        total = 0
        while True:
            consumed = self._sync_batch()
            total += consumed
            if consumed < self.batch_size:
                return total

    def _sync_batch(self) -> int:
        r = self.recorder
        with r.transaction(commit=True) as c:
            position = r.lock_position(c, TRACKER_NAME)
            notifications = self.app.recorder.select_notifications(position + 1, self.batch_size)
            if not notifications:
                return 0
            latest: dict[UUID, PendingRow | None] = {}
            for notification in notifications:
                try:
                    if not _is_dispute_topic(notification.topic):
                        continue
                    event = self.app.mapper.to_domain_event(notification)
                    if isinstance(event, Dispute.Event):
                        latest[event.originator_id] = pending_row(event)
                except Exception as error:  # an event this code cannot read: set it aside
                    self.quarantine.record(TRACKER_NAME, notification, error, cursor=c)
            self._write_rows(c, latest)
            r.set_position(c, TRACKER_NAME, notifications[-1].id)
        return len(notifications)

    def rewind_to(self, position: int) -> None:
        """Moves the tracked position back (never forward) so that the next sync re-reads
        the log from there: for quarantined events given back after a fix."""
        r = self.recorder
        with r.transaction(commit=True) as c:
            current = r.lock_position(c, TRACKER_NAME)
            r.set_position(c, TRACKER_NAME, max(0, min(current, position)))

    def _write_rows(self, c: Any, rows: Mapping[UUID, PendingRow | None]) -> None:
        self.recorder.write_rows(
            c,
            [(d, r.due_at, r.version) for d, r in rows.items() if r is not None],
            [d for d, r in rows.items() if r is None],
        )

    # Reading and rebuilding the table ----------------------------------------------------

    def pending(self) -> dict[UUID, PendingRow]:
        """The table as it stands."""
        return {d: PendingRow(at, version) for d, at, version in self.recorder.rows()}

    def computed_from_zero(self, stop: int | None = None) -> tuple[dict[UUID, PendingRow], int]:
        """What the table would hold after applying the whole log up to `stop` (default:
        everything stored), and the last notification id read."""
        rows: dict[UUID, PendingRow | None] = {}
        position = 0
        while True:
            notifications = self.app.recorder.select_notifications(
                position + 1, self.batch_size, stop
            )
            for notification in notifications:
                try:
                    if _is_dispute_topic(notification.topic):
                        event = self.app.mapper.to_domain_event(notification)
                        if isinstance(event, Dispute.Event):
                            rows[event.originator_id] = pending_row(event)
                except Exception as error:
                    self.quarantine.record(TRACKER_NAME, notification, error)
            if notifications:
                position = notifications[-1].id
            if len(notifications) < self.batch_size:
                break
        return {d: r for d, r in rows.items() if r is not None}, position

    def rebuild(self) -> int:
        """Recomputes the table from zero, up to the tracked position, in one transaction
        (followers wait meanwhile), then catches up; returns the number of rows."""
        r = self.recorder
        with r.transaction(commit=True) as c:
            position = r.lock_position(c, TRACKER_NAME)
            rows, _ = self.computed_from_zero(stop=position) if position else ({}, 0)
            r.delete_rows(c)
            self._write_rows(c, rows)
        self.sync()
        return len(self.pending())

    def next_check_at(self) -> datetime | None:
        """When the scheduler next has something to look at (None: nothing pending)."""
        return self.recorder.next_check_at()

    def count_due(self, at: datetime | None = None) -> int:
        """How many disputes are due to be looked at, at `at` (default now)."""
        return self.recorder.count_due(at or self.clock.now())
