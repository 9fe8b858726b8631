"""The deadline scheduler: fires the time-outs that fall due.

`DeadlineScheduler` keeps the pending-deadline table (services.dispute.pending_deadlines)
and fires what is due with an indexed query on `check_at`, never a scan of every dispute,
through `DisputeApplication.fire_due_timeouts`, which re-reads the aggregate and asks the
transition table what is due: a time-out already fired is not fired again, and two
replicas racing on one time-out record one event (the aggregate's version check). On
PostgreSQL a dispute is also claimed (`FOR UPDATE SKIP LOCKED`) while it is fired, so two
replicas do not even try the same one at once (the backend's `visit_due`).

Which deadlines have a time-out comes from `rules.DEADLINES`, never from this module.
The sandbox clock (`ClockStore`, `ServiceClock`, `advance_clock`) lives in
services.dispute.sandbox_clock; its names are re-exported here for the callers that
still import them from this module.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from shared.clock import Clock

from .application import DisputeApplication
from .domain import Dispute, rules
from .infrastructure.deadlines import UNCHANGED
from .infrastructure.pool import TRANSIENT_ERRORS
from .metrics import TIMEOUTS_FIRED
from .pending_deadlines import PendingDeadlines

# The sandbox clock's names, for the callers that still import them from here.
from .sandbox_clock import ClockStore, ServiceClock, advance_clock

__all__ = ["ClockStore", "DeadlineScheduler", "ServiceClock", "advance_clock"]

log = logging.getLogger(__name__)


class DeadlineScheduler(PendingDeadlines):
    """Keeps the pending-deadline table from the events and fires what falls due.

    `app` is a DisputeApplication; `clock` must be the clock the application fires with
    (the default, `app.clock`). Several schedulers (threads or processes, any replica)
    may run on one store at once.
    """

    def __init__(
        self,
        app: DisputeApplication,
        clock: Clock | None = None,
        *,
        batch_size: int = 500,
        retry_after: timedelta = timedelta(seconds=30),
    ) -> None:
        super().__init__(app, clock, batch_size=batch_size)
        self.retry_after = retry_after

    # Firing --------------------------------------------------------------------------------

    def fire_due(self, limit: int = 100) -> int:
        """Fires the time-outs of up to `limit` disputes whose next check is due now
        (an indexed query on `check_at`); returns how many time-outs fired."""
        now = self.clock.now()
        return self.recorder.visit_due(
            now, limit, lambda dispute_id, version: self._fire_one(dispute_id, version, now)
        )

    def _fire_one(self, dispute_id: UUID, version: int, now: datetime) -> tuple[int, Any, int]:
        """Fires one dispute's due time-outs. Returns (how many fired, the check_at to
        store when nothing fired or it failed, else UNCHANGED, the version it is for)."""
        correlation_id = f"deadline-{dispute_id}-v{version}-{uuid.uuid4().hex[:8]}"
        about = {"dispute_id": str(dispute_id), "request_id": correlation_id}
        try:
            fired = self.app.fire_due_timeouts(dispute_id, correlation_id)
        except TRANSIENT_ERRORS:
            raise  # the database is away: the round ends, the next one tries again
        except Exception:
            log.exception(
                "firing the time-outs of dispute %s failed; retrying later", dispute_id, extra=about
            )
            return 0, now + self.retry_after, version
        if fired:
            TIMEOUTS_FIRED.inc(len(fired))
            log.info(
                "fired %s on dispute %s (correlation id %s)",
                ", ".join(fired),
                dispute_id,
                correlation_id,
                extra=about,
            )
            return len(fired), UNCHANGED, version  # the new events reset the row on sync
        # Nothing was due after all (already fired, or the table refuses it in this
        # state): look again at the next deadline still to come, if any.
        try:
            dispute: Dispute = self.app.repository.get(dispute_id)
        except TRANSIENT_ERRORS:
            raise
        except Exception:
            log.exception("reading dispute %s failed; retrying later", dispute_id)
            return 0, now + self.retry_after, version
        later = [
            d.due_at for d in dispute.deadlines if rules.DEADLINES.get(d.kind) and d.due_at > now
        ]
        return 0, (min(later) if later else None), dispute.version

    # Running ---------------------------------------------------------------------------

    def run_once(self, limit: int = 100) -> int:
        """Applies new events, then fires what is due; returns how many time-outs fired."""
        self.sync()
        return self.fire_due(limit)

    def run_forever(
        self,
        stop: threading.Event,
        poll_seconds: float = 1.0,
        before_each: Any = None,
    ) -> None:
        """Runs `run_once` every `poll_seconds` until `stop` is set (at once when a round
        fired a full batch). `before_each`, if given, is called before every round (the
        worker refreshes the sandbox clock there). Errors are logged, not raised."""
        while not stop.is_set():
            busy = False
            try:
                if before_each is not None:
                    before_each()
                fired = self.run_once()
                busy = fired > 0 and self.count_due() > 0
            except TRANSIENT_ERRORS as error:
                # The pool logs one line when the database goes and one when it is back.
                log.debug("deadline scheduler round failed (%s); retrying", error)
            except Exception:
                log.exception("deadline scheduler round failed; retrying")
            if not busy:
                stop.wait(poll_seconds)
