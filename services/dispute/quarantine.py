"""Quarantine: events a reader could not apply, kept aside so that the reader goes on.

A reader (the deadline worker, each dashboard view of the projector) that cannot decode
or apply a stored event must not stop there: history cannot be deleted, so it would stop
there for good, on every restart. Instead the event's position, what it is and why it
failed go into `dispute_quarantine` (one row per reader and position), an error is
logged, and the reader moves past it. The service's `/readyz` reports the count.

After a fix (a new release that can read it), `python -m services.dispute.quarantine
retry` gives the events back: the worker re-reads the log from the first quarantined
position (re-applying later events too, in order: its table is a pure function of the
latest event per dispute), and a dashboard view is rebuilt from zero (its counts are not
idempotent). An event that still fails is quarantined again. `list` shows them.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .infrastructure.backend import recorders_of
from .infrastructure.quarantine import QUARANTINE_TABLE

__all__ = ["QUARANTINE_TABLE", "Entry", "Quarantine", "main", "printable", "retry"]

log = logging.getLogger(__name__)

MAX_ERROR = 2000
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str, limit: int = MAX_ERROR) -> str:
    """Text safe to store and show: control characters escaped, never a lone surrogate."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return _UNPRINTABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)[:limit]


@dataclass(frozen=True)
class Entry:
    reader: str
    position: int
    topic: str
    stream_id: str
    version: int
    error: str
    quarantined_at: datetime


class Quarantine:
    """The quarantine table in the events' own database, through the backend's
    `QuarantineRecorder` (services.dispute.infrastructure)."""

    def __init__(self, app_or_datastore: Any) -> None:
        self.recorder = recorders_of(app_or_datastore).quarantine_recorder()
        self.recorder.create_table()

    def record(
        self, reader: str, notification: Any, error: BaseException, cursor: Any = None
    ) -> None:
        """Keeps the notification aside for `reader` (in `cursor`'s transaction if given,
        else in one of its own) and logs it at error level."""
        why = printable(f"{type(error).__name__}: {error}")
        topic = printable(str(getattr(notification, "topic", "")), 500)
        stream = printable(str(getattr(notification, "originator_id", "")), 200)
        row = (
            reader,
            int(notification.id),
            topic,
            stream,
            int(getattr(notification, "originator_version", 0) or 0),
            why,
            datetime.now(UTC),
        )
        self.recorder.record(row, cursor)
        log.error(
            "quarantined the event at position %d (%s, stream %s, version %s) for %s: %s",
            row[1],
            topic,
            stream,
            row[4],
            reader,
            why,
        )

    def count(self, reader: str | None = None) -> int:
        return self.recorder.count(reader)

    def entries(self, reader: str | None = None) -> list[Entry]:
        return [
            Entry(
                reader=r["reader"],
                position=int(r["position"]),
                topic=r["topic"],
                stream_id=r["stream_id"],
                version=int(r["version"]),
                error=r["error"],
                quarantined_at=r["quarantined_at"] or datetime.now(UTC),
            )
            for r in self.recorder.entries(reader)
        ]

    def release(self, reader: str) -> list[int]:
        """Forgets the reader's quarantined events; returns their positions."""
        return self.recorder.release(reader)


# The command ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.dispute.quarantine",
        description="List quarantined events, or give them back to their readers after a fix.",
    )
    parser.add_argument("command", choices=["list", "retry"])
    parser.add_argument(
        "--reader", help="only this reader (e.g. deadline-scheduler, projector:summary)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    from .application import DisputeApplication
    from .settings import load_settings

    settings = load_settings()
    app = DisputeApplication(env=settings.persistence_env(), policy=settings.policy)
    try:
        quarantine = Quarantine(app)
        if args.command == "list":
            entries = quarantine.entries(args.reader)
            for e in entries:
                print(
                    f"{e.reader}\tposition {e.position}\t{e.topic}\t{e.stream_id} "
                    f"v{e.version}\t{e.quarantined_at.isoformat()}\t{e.error}"
                )
            print(f"{len(entries)} quarantined event(s)")
            return 0
        readers = sorted({e.reader for e in quarantine.entries(args.reader)})
        for reader in readers:
            print(retry(app, quarantine, reader))
        if not readers:
            print("nothing quarantined")
        return 0
    finally:
        app.close()


def retry(app: Any, quarantine: Quarantine, reader: str) -> str:
    """Gives a reader's quarantined events back to it; says what it did."""
    from .pending_deadlines import TRACKER_NAME
    from .projections.projector import Projector
    from .scheduler import DeadlineScheduler

    positions = quarantine.release(reader)
    if not positions:
        return f"{reader}: nothing quarantined"
    if reader == TRACKER_NAME:
        scheduler = DeadlineScheduler(app)
        scheduler.rewind_to(positions[0] - 1)
        consumed = scheduler.sync()
        return f"{reader}: re-read {consumed} events from position {positions[0]}"
    view = reader.removeprefix("projector:")
    report = Projector(app).rebuild([view])
    return f"{reader}: rebuilt from {report.events} events"


if __name__ == "__main__":
    sys.exit(main())
