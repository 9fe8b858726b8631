"""The projector: follows the application's ordered notification log into the views.

It polls `recorder.select_notifications` from each view's tracked position, which works
the same on SQLite and PostgreSQL (eventsourcing's `subscribe` is PostgreSQL-only and its
listener thread must be restarted by a supervisor when its connection drops). Each batch
is written with its position in one transaction (see read_models.py), so killing the process
at any point loses nothing and counts nothing twice: the next run starts after the last
committed batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import Notification, Tracking
from eventsourcing.utils import get_topic

from ..domain import Dispute, Order
from ..infrastructure.pool import TRANSIENT_ERRORS
from ..quarantine import Quarantine, printable
from .read_models import VIEW_NAMES, DashboardView, PositionMoved, construct_views

log = logging.getLogger(__name__)

DISPUTE_TOPIC_PREFIX = get_topic(Dispute) + "."
ORDER_TOPIC_PREFIX = get_topic(Order) + "."
# A database that is down or busy: the batch is retried as it is, never quarantined.
# (DatabaseUnavailable and OutcomeUnknown too: services.dispute.infrastructure.pool.)
STORAGE_ERRORS = TRANSIENT_ERRORS


@dataclass(frozen=True)
class RebuildReport:
    views: tuple[str, ...]
    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


class Projector:
    def __init__(
        self,
        app: Application[Any],
        views: Mapping[str, DashboardView] | None = None,
        *,
        batch_size: int = 500,
    ) -> None:
        self.app = app
        self.views = dict(views) if views is not None else views_of(app)
        self.batch_size = batch_size
        self.quarantine = Quarantine(app)

    def run_once(self) -> int:
        """Processes at most one batch per view; returns how many notifications it read."""
        processed = 0
        by_position: dict[int | None, list[DashboardView]] = {}
        for view in self.views.values():
            by_position.setdefault(view.max_tracking_id(self.app.name), []).append(view)
        for position, views in by_position.items():
            notifications = self._read_after(position)
            if not notifications:
                continue
            try:
                events: list[Any] | None = self._events(notifications)
            except STORAGE_ERRORS:
                raise
            except Exception:  # one of them cannot be decoded: find it, one at a time
                events = None
            tracking = Tracking(self.app.name, notifications[-1].id)
            for view in views:
                if events is not None:
                    try:
                        view.process_batch(position, tracking, events)
                    except PositionMoved as moved:
                        log.info("%s; reading again", moved)
                        continue
                    except STORAGE_ERRORS:
                        raise
                    except Exception as error:
                        log.warning(
                            "the %s view could not apply a batch (%s); one event at a time",
                            view.name,
                            printable(str(error), 300),
                        )
                    else:
                        processed += len(notifications)
                        continue
                processed += self._one_at_a_time(view, position, notifications)
        return processed

    def reader_name(self, view: DashboardView) -> str:
        """The view's name as a reader of the log: `projector:summary`..."""
        key = next((k for k, v in self.views.items() if v is view), view.name)
        return f"projector:{key}"

    def _one_at_a_time(
        self, view: DashboardView, position: int | None, notifications: Sequence[Notification]
    ) -> int:
        """Applies the batch event by event; an event the view cannot apply (decoding,
        folding or storing it fails) is quarantined and the view moves past it, so no
        stored event can stop the projector. Returns how many it read."""
        done = 0
        for notification in notifications:
            tracking = Tracking(self.app.name, notification.id)
            try:
                view.process_batch(position, tracking, self._events([notification]))
            except PositionMoved as moved:
                log.info("%s; reading again", moved)
                return done
            except STORAGE_ERRORS:
                raise
            except Exception as error:
                self.quarantine.record(self.reader_name(view), notification, error)
                try:
                    view.process_batch(position, tracking, [])  # past it
                except PositionMoved as moved:
                    log.info("%s; reading again", moved)
                    return done
            position = notification.id
            done += 1
        return done

    def catch_up(self) -> int:
        """Processes until no view has anything left to read; returns the count read."""
        total = 0
        while processed := self.run_once():
            total += processed
        return total

    def run_forever(self, stop: threading.Event, poll_seconds: float = 0.5) -> None:
        """Follows the log until `stop` is set. Storage errors are logged and retried:
        the batch that failed rolled back, so it is read again."""
        while not stop.is_set():
            try:
                processed = self.run_once()
            except TRANSIENT_ERRORS as error:
                # The pool logs one line when the database goes and one when it is back.
                log.debug("projection batch failed, retrying: %s", error)
                stop.wait(min(1.0, poll_seconds))
                continue
            if not processed:
                stop.wait(poll_seconds)

    def rebuild(self, names: Iterable[str] | None = None, *, drop: bool = False) -> RebuildReport:
        """Empties the named views (all by default) and their positions, then reprocesses
        the whole log into them."""
        chosen = tuple(names or self.views)
        unknown = [n for n in chosen if n not in self.views]
        if unknown:
            raise ValueError(
                f"unknown view {', '.join(unknown)}: choose from {', '.join(VIEW_NAMES)}"
            )
        started = time.perf_counter()
        for name in chosen:
            view = self.views[name]
            if drop:
                view.drop(self.app.name)
                view.create_table()
            else:
                view.clear(self.app.name)
        rebuilding = Projector(
            self.app, {n: self.views[n] for n in chosen}, batch_size=self.batch_size
        )
        events = 0
        while processed := rebuilding.run_once():
            events += processed
        seconds = time.perf_counter() - started
        return RebuildReport(chosen, events // len(chosen), seconds)

    def _read_after(self, position: int | None) -> Sequence[Notification]:
        return self.app.recorder.select_notifications(
            start=position, limit=self.batch_size, inclusive_of_start=position is None
        )

    def _events(self, notifications: Sequence[Notification]) -> list[Any]:
        """The batch's Dispute and Order events (the views read nothing else)."""
        return [
            self.app.mapper.to_domain_event(n)
            for n in notifications
            if n.topic.startswith((DISPUTE_TOPIC_PREFIX, ORDER_TOPIC_PREFIX))
        ]


def views_of(app: Application[Any], *, create: bool = True) -> dict[str, DashboardView]:
    """The views, in the database the application's events are in."""
    if getattr(app.recorder, "datastore", None) is None:
        raise TypeError("dashboard views need an SQLite or PostgreSQL event store")
    return construct_views(app, create=create)
