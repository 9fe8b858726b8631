"""`python -m services.dispute.projections [run]`: follow the event log into the views
until SIGINT or SIGTERM. `... rebuild [--view NAME] [--drop]`: rebuild from zero."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from pydantic import ValidationError

from shared import observability
from shared.config_errors import describe

from ..application import DisputeApplication
from ..domain import rules
from ..metrics import (
    DISPUTES_BY_STATE,
    PROJECTOR_LAG_EVENTS,
    PROJECTOR_LAG_SECONDS,
    Sampler,
    sample_pool,
    sample_quarantine,
)
from ..settings import load_settings
from ..startup import check_database
from .projector import Projector
from .queries import DashboardQueries
from .read_models import VIEW_NAMES

log = logging.getLogger("services.dispute.projections")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.dispute.projections")
    parser.add_argument("command", nargs="?", choices=["run", "rebuild"], default="run")
    parser.add_argument(
        "--view", action="append", choices=VIEW_NAMES, help="rebuild only this view (repeatable)"
    )
    parser.add_argument(
        "--drop", action="store_true", help="rebuild: drop and recreate the tables first"
    )
    parser.add_argument("--batch-size", type=int, default=500, help="events per transaction")
    parser.add_argument("--poll-seconds", type=float, default=None, help="idle wait")
    return parser.parse_args(argv)


def _sample(app: DisputeApplication, queries: DashboardQueries, projector: Projector) -> None:
    """The projector's gauges: its lag, and the disputes by state it counts."""
    lag = queries.lag()
    PROJECTOR_LAG_EVENTS.set(lag["events_behind"])
    PROJECTOR_LAG_SECONDS.set(lag["seconds_behind"])
    counts = queries.counts_by_state()
    for state in sorted(set(rules.STATES) | set(counts)):
        DISPUTES_BY_STATE.labels(state).set(counts.get(state, 0))
    sample_quarantine(projector.quarantine)
    sample_pool(app)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(f"projector: bad configuration:\n{describe(exc)}", file=sys.stderr)
        return 2  # `make run` does not restart a child that exits with 2
    observability.setup_logging("projector", settings)
    check_database(settings, "projector")
    app = DisputeApplication(env=settings.persistence_env(), policy=settings.policy)
    try:
        projector = Projector(app, batch_size=max(1, args.batch_size))
        if args.command == "rebuild":
            report = projector.rebuild(args.view, drop=args.drop)
            print(
                f"rebuilt {', '.join(report.views)}: {report.events} events in "
                f"{report.seconds:.2f} s ({report.events_per_second:.0f} events/s)"
            )
            return 0
        stop = threading.Event()

        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: stopping after the current batch", signum)
            stop.set()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        poll = args.poll_seconds if args.poll_seconds is not None else settings.worker_poll_seconds
        observability.serve_metrics(
            settings.host, settings.projector_metrics_port, "DISPUTES_PROJECTOR_METRICS_PORT"
        )
        queries = DashboardQueries(app)
        sampler = Sampler(lambda: _sample(app, queries, projector)).start()
        log.info("projecting %s into %s", app.name, ", ".join(projector.views))
        projector.run_forever(stop, poll_seconds=poll)
        sampler.stop()
        log.info("stopped")
        return 0
    finally:
        app.close()


if __name__ == "__main__":
    sys.exit(main())
