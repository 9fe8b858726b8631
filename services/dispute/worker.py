"""The deadline worker: fires every time-out when it falls due.

Run as `python -m services.dispute.worker`. Configuration is the service's own
(`services.dispute.settings`): the same store as the API, `DISPUTES_WORKER_POLL_SECONDS`
between rounds (default 1 s, so a time-out fires within a few seconds of its due time),
and with `DISPUTES_SANDBOX=1` the sandbox clock's stored offset, re-read every round.
Several workers may run at once (see `scheduler.DeadlineScheduler`); a restarted worker
catches up from its stored position. SIGINT or SIGTERM stops it after the current round.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from eventsourcing.persistence import PersistenceError
from pydantic import ValidationError

from shared import observability
from shared.config_errors import describe

from .application import DisputeApplication
from .metrics import WORKER_DUE, WORKER_OVERDUE, Sampler, sample_pool, sample_quarantine
from .scheduler import ClockStore, DeadlineScheduler, ServiceClock
from .settings import Settings, load_settings
from .startup import check_database

log = logging.getLogger("services.dispute.worker")


def main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(f"deadline worker: bad configuration:\n{describe(exc)}", file=sys.stderr)
        return 2  # `make run` does not restart a child that exits with 2
    observability.setup_logging("worker", settings)
    check_database(settings, "deadline worker")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s: stopping after this round", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    clock = ServiceClock()
    app = _start_application(settings, clock, stop)
    if app is None:
        return 1
    try:
        observability.serve_metrics(
            settings.host, settings.worker_metrics_port, "DISPUTES_WORKER_METRICS_PORT"
        )
        refresh = None
        if settings.sandbox:
            clock.bind(ClockStore(app))
            refresh = clock.refresh
        scheduler = DeadlineScheduler(app, clock)
        sampler = Sampler(lambda: _sample(app, scheduler, clock)).start()
        log.info(
            "deadline worker started (sandbox=%s, clock offset %s, poll %.2fs, position %d)",
            settings.sandbox,
            clock.offset,
            settings.worker_poll_seconds,
            scheduler.position(),
        )
        scheduler.run_forever(stop, settings.worker_poll_seconds, before_each=refresh)
        sampler.stop()
    finally:
        app.close()
    log.info("deadline worker stopped")
    return 0


def _sample(app: DisputeApplication, scheduler: DeadlineScheduler, clock: ServiceClock) -> None:
    """The worker's gauges: how overdue its oldest due deadline is, how many are due."""
    now = clock.now()
    next_check = scheduler.next_check_at()
    overdue = (now - next_check).total_seconds() if next_check is not None else 0.0
    WORKER_OVERDUE.set(max(0.0, overdue))
    WORKER_DUE.set(scheduler.count_due(now) if overdue > 0 else 0)
    sample_quarantine(scheduler.quarantine)
    sample_pool(app)


def _start_application(
    settings: Settings, clock: ServiceClock, stop: threading.Event, attempts: int = 8
) -> DisputeApplication | None:
    """Constructs the application, retrying while the database refuses (not up yet, or
    a transient failure); concurrent table creation itself is serialised by the
    recorder (`serialised_ddl`)."""
    for attempt in range(1, attempts + 1):
        try:
            return DisputeApplication(
                env=settings.persistence_env(),
                clock=clock,
                policy=settings.policy,
                snapshot_interval=settings.snapshot_interval,
            )
        except PersistenceError as exc:
            if attempt == attempts:
                raise
            log.warning("starting failed (%s); retrying (%d/%d)", exc, attempt, attempts)
            if stop.wait(0.2 * attempt):
                return None
    return None


if __name__ == "__main__":
    sys.exit(main())
