"""No stored event can stop a reader: the projector and the deadline worker set aside an
event they cannot apply (quarantine: what, why, at which position), say so at error
level, go on with the rest, and take it back after a fix with the retry command."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent

from services.dispute.application import DisputeApplication
from services.dispute.domain import OrderFacts
from services.dispute.domain.values import Actor, Role
from services.dispute.pending_deadlines import TRACKER_NAME
from services.dispute.projections import DashboardQueries, Projector
from services.dispute.projections.projector import DISPUTE_TOPIC_PREFIX
from services.dispute.quarantine import Quarantine, retry
from services.dispute.scheduler import DeadlineScheduler
from shared.clock import FixedClock
from shared.money import Money

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SERVICE = Actor(Role.SERVICE, "orders")
AGENT = Actor(Role.AGENT, "agent-1")
PHOTO = [{"kind": "photo", "uri": "https://files.example/p.jpg", "sha256": "a" * 64}]


def open_dispute(app: DisputeApplication, clock: FixedClock, name: str, seller: str = "s1") -> Any:
    facts = OrderFacts.parse(
        buyer_id="b1",
        seller_id=seller,
        amount=Money(5000, "USD"),
        payment_method="card",
        placed_at=clock.now() - timedelta(days=3),
    )
    app.put_order(SERVICE, f"req-{name}-o", f"order-{name}", facts)
    return app.open_dispute(
        Actor(Role.BUYER, "b1"),
        f"req-{name}-d",
        order_ref=f"order-{name}",
        reason="not_received",
        requested_resolution="refund_only",
        amount=Money(5000, "USD"),
        description="seeded",
        evidence=PHOTO,
    )


def store_unreadable_event(app: DisputeApplication) -> None:
    """An event of a class this release does not know (as after a rollback): every
    reader fails to decode it."""
    app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=uuid.uuid4(),
                originator_version=1,
                topic=DISPUTE_TOPIC_PREFIX + "FromTheFuture",
                state=b"{}",
            )
        ]
    )


@pytest.fixture
def world(backend: dict[str, str]) -> Any:
    clock = FixedClock(T0)
    app = DisputeApplication(env=backend, clock=clock)
    yield app, clock
    app.close()


def test_the_projector_quarantines_what_it_cannot_read_and_goes_on(
    world: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app, clock = world
    first = open_dispute(app, clock, "first")
    store_unreadable_event(app)
    second = open_dispute(app, clock, "second")
    projector = Projector(app, batch_size=50)
    with caplog.at_level(logging.ERROR):
        projector.catch_up()
    # Both good disputes are in the views: the poison in between did not stop them.
    queries = DashboardQueries(app, projector.views)
    listed = {r["dispute_id"] for r in queries.list_disputes(viewer=AGENT).items}
    assert listed == {str(first.id), str(second.id)}
    entries = Quarantine(app).entries()
    assert {e.reader for e in entries} == {f"projector:{name}" for name in projector.views}
    assert all(e.topic.endswith("FromTheFuture") and "Topic" in e.error for e in entries)
    assert any("quarantined the event at position" in r.message for r in caplog.records)
    # Nothing left to read, and a restart does not stumble on it again.
    assert Projector(app, batch_size=50).catch_up() == 0


def test_the_deadline_worker_quarantines_what_it_cannot_read_and_goes_on(world: Any) -> None:
    app, clock = world
    store_unreadable_event(app)
    dispute = open_dispute(app, clock, "after")
    scheduler = DeadlineScheduler(app, clock)
    scheduler.sync()
    assert dispute.id in scheduler.pending()  # the dispute after the poison has its row
    (entry,) = Quarantine(app).entries(TRACKER_NAME)
    assert entry.position == 1 and entry.topic.endswith("FromTheFuture")
    # Its deadline still fires.
    clock.advance(timedelta(days=30))
    assert scheduler.run_once() == 1


def test_retry_gives_the_events_back_and_a_still_failing_one_is_set_aside_again(
    world: Any,
) -> None:
    app, clock = world
    store_unreadable_event(app)
    dispute = open_dispute(app, clock, "one")
    scheduler = DeadlineScheduler(app, clock)
    scheduler.sync()
    projector = Projector(app, batch_size=50)
    projector.catch_up()
    quarantine = Quarantine(app)
    assert quarantine.count() == 1 + len(projector.views)
    said = retry(app, quarantine, TRACKER_NAME)
    assert "re-read" in said
    said = retry(app, quarantine, "projector:summary")
    assert "rebuilt" in said
    # Still unreadable (no fix deployed): quarantined again, and the readers are whole.
    assert quarantine.count() == 1 + len(projector.views)
    assert dispute.id in scheduler.pending()
    queries = DashboardQueries(app, projector.views)
    assert [r["dispute_id"] for r in queries.list_disputes(viewer=AGENT).items] == [str(dispute.id)]


def test_values_postgresql_refuses_are_quarantined_not_fatal(
    backend: dict[str, str],
) -> None:
    if not backend["PERSISTENCE_MODULE"].endswith("postgres"):
        pytest.skip("PostgreSQL only: SQLite stores NUL and big integers")
    clock = FixedClock(T0)
    app = DisputeApplication(env=backend, clock=clock)
    try:
        poisoned = open_dispute(app, clock, "nul", seller="s\x00nul")  # as main allowed
        good = open_dispute(app, clock, "good")
        projector = Projector(app, batch_size=50)
        projector.catch_up()
        queries = DashboardQueries(app, projector.views)
        listed = {r["dispute_id"] for r in queries.list_disputes(viewer=AGENT).items}
        assert str(good.id) in listed and str(poisoned.id) not in listed
        errors = [e.error for e in Quarantine(app).entries("projector:summary")]
        assert errors and all("\x00" not in e for e in errors)  # stored printable
    finally:
        app.close()
