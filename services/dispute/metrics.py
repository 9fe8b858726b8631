"""The dispute service's own Prometheus metrics (the HTTP ones are shared.observability's).

Counters are counted where the thing happens; the gauges of state (pool use, lag,
disputes by state, deadlines overdue) are sampled every few seconds by `Sampler`, a
daemon thread in the process that owns them, so a scrape costs no query.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from shared.observability import gauge

log = logging.getLogger("services.dispute.metrics")

COMMANDS = Counter(
    "disputes_commands_total",
    "Commands the service ran, by action and outcome (applied, replayed, or the problem "
    "code of a refusal: action_not_allowed, version_mismatch, concurrent_update...)",
    ["action", "outcome"],
)
IDEMPOTENCY_REPLAYS = Counter(
    "disputes_idempotency_replays_total",
    "Requests answered with the stored response of an earlier one with the same key",
)
POOL_CONNECTIONS = gauge(
    "disputes_db_pool_connections",
    "The PostgreSQL pool's connections, by state (size, idle, in_use, waiting requests)",
    ["state"],
    "livesum",
)
TIMEOUTS_FIRED = Counter(
    "disputes_timeouts_fired_total",
    "Time-outs the deadline worker fired (each one an event recorded as the system actor)",
)
WORKER_OVERDUE = gauge(
    "disputes_deadline_worker_lag_seconds",
    "How long the most overdue pending deadline has been due and not yet handled "
    "(0 when nothing is overdue)",
)
WORKER_DUE = gauge(
    "disputes_deadline_worker_due", "Disputes with a deadline due now and not yet handled"
)
PROJECTOR_LAG_EVENTS = gauge(
    "disputes_projector_lag_events", "Events the slowest dashboard view has still to process"
)
PROJECTOR_LAG_SECONDS = gauge(
    "disputes_projector_lag_seconds",
    "Event time between the newest event and the last one the slowest view processed",
)
DELIVERY_LAG_EVENTS = gauge(
    "disputes_delivery_lag_events",
    "Events after the position of the webhook subscription furthest behind (an upper "
    "bound: a subscription passes over the event types it does not want)",
)
DELIVERY_LAG_SECONDS = gauge(
    "disputes_delivery_lag_seconds",
    "Event time between the newest event and the oldest one the furthest-behind webhook "
    "subscription has not delivered yet (0 when every subscription is caught up)",
)
DISPUTES_BY_STATE = gauge(
    "disputes_disputes", "Disputes by state, as the dashboard projection counts them", ["state"]
)
MERKLE_TREE_SIZE = gauge("disputes_merkle_tree_size", "Events in the Merkle log's tree")
MERKLE_LAG_EVENTS = gauge(
    "disputes_merkle_lag_events", "Stored events the notary has not appended to the tree yet"
)
MERKLE_CHECKPOINT_SIZE = gauge(
    "disputes_merkle_checkpoint_size", "Tree size of the newest published signed checkpoint"
)
MERKLE_CHECKPOINT_REFUSED = gauge(
    "disputes_merkle_checkpoint_refused",
    "1 while the notary refuses to sign: the tree does not extend the published checkpoint "
    "(rolled back or rewritten in the database); alert on it",
)
QUARANTINED_EVENTS = gauge(
    "disputes_quarantined_events",
    "Stored events a reader could not apply and set aside (services.dispute.quarantine), "
    "by reader; the worker and the projector both report the whole table",
    ["reader"],
)


_quarantine_readers: set[str] = set()  # every reader reported so far, to report its 0


def sample_quarantine(quarantine: Any) -> None:
    """The quarantine gauge, by reader (a reader whose entries were retried goes to 0)."""
    counts: dict[str, int] = {}
    for entry in quarantine.entries():
        counts[entry.reader] = counts.get(entry.reader, 0) + 1
    _quarantine_readers.update(counts)
    for reader in _quarantine_readers:
        QUARANTINED_EVENTS.labels(reader).set(counts.get(reader, 0))


def sample_pool(application: Any) -> None:
    """The pool gauges, from psycopg_pool's stats (nothing on SQLite: no pool)."""
    pool = getattr(getattr(application.recorder, "datastore", None), "pool", None)
    if pool is None or not hasattr(pool, "get_stats"):
        return
    stats = pool.get_stats()
    size = stats.get("pool_size", 0)
    idle = stats.get("pool_available", 0)
    POOL_CONNECTIONS.labels("size").set(size)
    POOL_CONNECTIONS.labels("idle").set(idle)
    POOL_CONNECTIONS.labels("in_use").set(max(0, size - idle))
    POOL_CONNECTIONS.labels("waiting").set(stats.get("requests_waiting", 0))


class Sampler:
    """Calls `sample` every `interval` seconds in a daemon thread until stopped; a failing
    sample is logged (once per kind of failure) and tried again next time."""

    def __init__(self, sample: Callable[[], None], interval: float = 2.0) -> None:
        self.sample = sample
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)
        self._last_error = ""

    def start(self) -> Sampler:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.sample()
            except Exception as exc:  # a sample must never stop the process
                if repr(exc) != self._last_error:
                    log.warning("sampling metrics failed: %s", exc)
                    self._last_error = repr(exc)
            self.stopped.wait(self.interval)


def event_time(application: Any, position: int) -> datetime | None:
    """The time of the event at feed `position` (None: there is none)."""
    found = application.recorder.select_notifications(start=position, limit=1)
    if not found or found[0].id != position:
        return None
    stamp = application.mapper.to_domain_event(found[0]).timestamp
    return stamp.astimezone(UTC) if isinstance(stamp, datetime) else None


def sample_delivery(application: Any, store: Any) -> None:
    """The delivery gauges, from the subscriptions' positions and the feed's head."""
    positions = store.positions()
    head = application.recorder.max_notification_id() or 0
    behind = max((head - p for p in positions), default=0)
    DELIVERY_LAG_EVENTS.set(max(0, behind))
    seconds = 0.0
    if behind > 0:
        newest = event_time(application, head)
        oldest = event_time(application, min(positions) + 1)
        if newest is not None and oldest is not None:
            seconds = max(0.0, (newest - oldest).total_seconds())
    DELIVERY_LAG_SECONDS.set(seconds)
