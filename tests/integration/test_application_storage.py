"""The application on real storage, written once and run on SQLite and on PostgreSQL:
reading back, one dispute per order under races, optimistic concurrency, history,
snapshots, time-outs firing once, and who may see what."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import pytest
from eventsourcing.application import project_aggregate

from services.dispute.application import DisputeApplication
from services.dispute.domain import (
    ConcurrentUpdate,
    Dispute,
    DisputeAlreadyExists,
    DisputeNotFound,
    DomainError,
    OrderFacts,
    OrderFactsConflict,
    OrderNotFound,
    VersionMismatch,
    rules,
)
from services.dispute.domain.values import Actor, Role
from shared.clock import FixedClock
from shared.money import Money
from tests.integration.app_commands import act

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PLACED = T0 - timedelta(days=10)
BUYER = Actor(Role.BUYER, "buyer-1")
SELLER = Actor(Role.SELLER, "seller-1")
AGENT = Actor(Role.AGENT, "agent-1")
SERVICE = Actor(Role.SERVICE, "orders")
OTHER_BUYER = Actor(Role.BUYER, "buyer-2")
OTHER_SELLER = Actor(Role.SELLER, "seller-2")
PHOTO = {"kind": "photo", "uri": "https://evidence.example/1.jpg", "sha256": "ab" * 32}
T = TypeVar("T")


class RacingClock(FixedClock):
    """A fixed clock that, while armed, holds each caller of `now()` until the other
    racer has called it too. The application reads the clock after loading and before
    deciding, so both racers decide on the same stored version."""

    def __init__(self, at: datetime) -> None:
        super().__init__(at)
        self.barrier: threading.Barrier | None = None

    def now(self) -> datetime:
        if self.barrier is not None:
            self.barrier.wait(timeout=30)
        return super().now()


def facts(**changes: Any) -> OrderFacts:
    values: dict[str, Any] = {
        "buyer_id": BUYER.id, "seller_id": SELLER.id, "amount": Money(10_000, "USD"),
        "payment_method": "card", "placed_at": PLACED,
    }  # fmt: skip
    return OrderFacts.parse(**{**values, **changes})


@pytest.fixture
def clock() -> RacingClock:
    return RacingClock(T0)


@pytest.fixture
def app(backend: dict[str, str], clock: RacingClock) -> Iterator[DisputeApplication]:
    application = DisputeApplication(env=backend, clock=clock)
    try:
        yield application
    finally:
        application.close()


def open_dispute(app: DisputeApplication, order_ref: str = "order-1", corr: str = "c-open",
                 register: bool = True) -> Dispute:  # fmt: skip
    if register:
        app.put_order(SERVICE, "c-order", order_ref, facts())
    return app.open_dispute(
        BUYER, corr, order_ref=order_ref, reason="damaged", requested_resolution="refund_only",
        amount=Money(10_000, "USD"), description="Broken", evidence=[PHOTO],
    )  # fmt: skip


def race(clock: RacingClock, *calls: Callable[[], T]) -> list[T | DomainError]:
    """Runs the calls in threads that all load before any of them decides."""
    results: list[T | DomainError] = [DomainError("did not run")] * len(calls)

    def run(i: int, call: Callable[[], T]) -> None:
        try:
            results[i] = call()
        except DomainError as error:
            results[i] = error

    clock.barrier = threading.Barrier(len(calls))
    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    clock.barrier = None
    return results


def stored_events(app: DisputeApplication, dispute_id: UUID) -> list[Any]:
    return list(app.events.get(dispute_id))


def state_of(aggregate: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


class TestOpeningAndReadingBack:
    def test_an_order_and_its_dispute_are_read_back_as_recorded(
        self, app: DisputeApplication
    ) -> None:
        opened = open_dispute(app)
        order = app.get_order(BUYER, "order-1")
        assert (order.buyer_id, order.amount, order.dispute_id) == (
            BUYER.id, 10_000, str(opened.id),
        )  # fmt: skip
        loaded = app.get_dispute(SELLER, str(opened.id))
        assert state_of(loaded) == state_of(opened)
        [event] = app.dispute_events(AGENT, opened.id)
        assert (event.actor_id, event.correlation_id, event.timestamp) == (BUYER.id, "c-open", T0)

    def test_a_second_dispute_for_the_order_conflicts(self, app: DisputeApplication) -> None:
        open_dispute(app)
        with pytest.raises(DisputeAlreadyExists):
            open_dispute(app, corr="c-again", register=False)

    def test_a_withdrawn_dispute_is_not_reopened(self, app: DisputeApplication) -> None:
        dispute = open_dispute(app)
        act(app, BUYER, "c-w", str(dispute.id), "withdraw", {"reason": "Arrived"})
        with pytest.raises(DisputeAlreadyExists):
            open_dispute(app, corr="c-again", register=False)

    def test_two_buyers_requests_opening_at_once_make_exactly_one_dispute(
        self, app: DisputeApplication, clock: RacingClock
    ) -> None:
        app.put_order(SERVICE, "c-order", "order-1", facts())
        results = race(
            clock,
            lambda: open_dispute(app, corr="c-a", register=False),
            lambda: open_dispute(app, corr="c-b", register=False),
        )
        winners = [r for r in results if isinstance(r, Dispute)]
        losers = [r for r in results if not isinstance(r, Dispute)]
        assert len(winners) == 1
        assert [type(r) for r in losers] == [DisputeAlreadyExists]
        [event] = stored_events(app, winners[0].id)
        assert event.correlation_id == ["c-a", "c-b"][results.index(winners[0])]
        order = app.get_order(AGENT, "order-1")
        assert order.dispute_id == str(winners[0].id)
        assert [type(e).__name__ for e in app.events.get(order.id)].count("DisputeOpened") == 1


class TestConcurrentWriters:
    def test_of_two_writers_on_one_version_one_wins_and_nothing_of_the_other_is_stored(
        self, app: DisputeApplication, clock: RacingClock
    ) -> None:
        ref = str(open_dispute(app).id)
        results = race(
            clock,
            lambda: act(app, SELLER, "c-seller", ref, "reject", {"reason": "Not broken"}),
            lambda: act(app, BUYER, "c-buyer", ref, "withdraw", {"reason": "Arrived"}),
        )
        assert sorted(type(r).__name__ for r in results) == ["ConcurrentUpdate", "Dispute"]
        loser = "c-seller" if isinstance(results[0], ConcurrentUpdate) else "c-buyer"
        events = stored_events(app, UUID(ref))
        assert len(events) == 2
        assert loser not in [e.correlation_id for e in events]

    def test_a_stale_expected_version_is_refused_and_records_nothing(
        self, app: DisputeApplication
    ) -> None:
        ref = str(open_dispute(app).id)
        with pytest.raises(VersionMismatch) as refused:
            act(app, SELLER, "c-r", ref, "reject", {"reason": "No"}, expected_version=7)
        assert (refused.value.expected, refused.value.current) == (7, 1)
        assert len(stored_events(app, UUID(ref))) == 1
        act(app, SELLER, "c-r", ref, "reject", {"reason": "No"}, expected_version=1)
        assert app.get_dispute(SELLER, ref).version == 2


class TestHistory:
    def test_a_past_version_and_a_past_moment_give_the_past_state(
        self, app: DisputeApplication, clock: RacingClock
    ) -> None:
        ref = str(open_dispute(app).id)
        clock.advance(timedelta(days=1))
        act(app, SELLER, "c-r", ref, "reject", {"reason": "No"})
        clock.advance(timedelta(days=1))
        act(app, BUYER, "c-e", ref, "escalate", {"reason": "Stuck"})
        assert app.get_dispute(AGENT, ref, version=1).state == rules.AWAITING_SELLER
        assert app.get_dispute(AGENT, ref, version=2).state == rules.NEGOTIATING
        as_of = T0 + timedelta(days=1, hours=12)
        assert app.get_dispute(AGENT, ref, as_of=as_of).version == 2
        assert app.get_dispute(AGENT, ref).state == rules.UNDER_REVIEW
        with pytest.raises(DisputeNotFound):
            app.get_dispute(AGENT, ref, as_of=T0 - timedelta(seconds=1))

    def test_after_more_than_fifty_events_a_snapshot_loads_equal_to_a_full_replay(
        self, app: DisputeApplication, clock: RacingClock
    ) -> None:
        dispute_id = open_dispute(app).id
        for n in range(55):
            clock.advance(timedelta(minutes=1))
            act(app, BUYER, f"c-{n}", str(dispute_id), "messages", {"body": f"Update {n}"})
        assert [s.originator_version for s in app.snapshots.get(dispute_id)] == [50]
        loaded = app.repository.get(dispute_id)
        replayed = project_aggregate(None, app.events.get(dispute_id))
        assert loaded.version == 56
        assert state_of(loaded) == state_of(replayed)

    @pytest.mark.parametrize(("interval", "snapshots"), [(3, [3, 6]), (5, [5]), (8, [])])
    def test_snapshots_are_taken_at_the_configured_interval(
        self, backend: dict[str, str], clock: RacingClock, interval: int, snapshots: list[int]
    ) -> None:
        app = DisputeApplication(env=backend, clock=clock, snapshot_interval=interval)
        try:
            dispute_id = open_dispute(app).id
            for n in range(6):
                act(app, BUYER, f"c-{n}", str(dispute_id), "messages", {"body": f"Update {n}"})
            assert app.snapshots is not None
            assert [s.originator_version for s in app.snapshots.get(dispute_id)] == snapshots
            loaded = app.repository.get(dispute_id)
            assert loaded.version == 7
            assert state_of(loaded) == state_of(project_aggregate(None, app.events.get(dispute_id)))
        finally:
            app.close()

    def test_an_interval_below_one_is_refused_at_construction(self) -> None:
        with pytest.raises(ValueError, match="snapshot_interval"):
            DisputeApplication(
                env={"PERSISTENCE_MODULE": "eventsourcing.popo"}, snapshot_interval=0
            )


class TestTimeOuts:
    def test_seller_silence_fires_once_and_a_second_sweep_fires_nothing(
        self, app: DisputeApplication, clock: RacingClock
    ) -> None:
        dispute_id = open_dispute(app).id
        assert app.fire_due_timeouts(dispute_id, "c-early") == []
        clock.advance(timedelta(days=5))
        assert app.fire_due_timeouts(dispute_id, "c-sweep") == ["seller_response_timeout"]
        assert app.fire_due_timeouts(dispute_id, "c-sweep-2") == []
        events = stored_events(app, dispute_id)
        assert [type(e).__name__ for e in events] == ["Opened", "SellerResponseLapsed"]
        assert (events[1].actor_role, events[1].correlation_id) == ("system", "c-sweep")


class TestVisibility:
    @pytest.mark.parametrize("stranger", [OTHER_BUYER, OTHER_SELLER], ids=lambda a: a.id)
    def test_a_party_cannot_see_another_partys_dispute_or_order(
        self, app: DisputeApplication, stranger: Actor
    ) -> None:
        ref = str(open_dispute(app).id)
        with pytest.raises(DisputeNotFound):
            app.get_dispute(stranger, ref)
        with pytest.raises(OrderNotFound):
            app.get_order(stranger, "order-1")
        with pytest.raises(DisputeNotFound):
            act(app, stranger, "c-x", ref, "messages", {"body": "hi"})

    def test_an_unknown_or_malformed_reference_is_not_found(self, app: DisputeApplication) -> None:
        with pytest.raises(DisputeNotFound):
            app.get_dispute(AGENT, "not-a-uuid")
        with pytest.raises(DisputeNotFound):
            app.get_dispute(AGENT, str(UUID(int=1)))


class TestPuttingOrders:
    def test_the_same_facts_twice_record_nothing_new(self, app: DisputeApplication) -> None:
        order, created = app.put_order(SERVICE, "c-1", "order-1", facts())
        again, created_again = app.put_order(SERVICE, "c-2", "order-1", facts())
        assert (created, created_again) == (True, False)
        assert again.version == order.version
        assert len(list(app.events.get(order.id))) == 1

    def test_added_delivery_facts_record_one_event(self, app: DisputeApplication) -> None:
        order, _ = app.put_order(SERVICE, "c-1", "order-1", facts())
        app.put_order(SERVICE, "c-2", "order-1", facts(delivered_at=T0 - timedelta(days=1)))
        events = list(app.events.get(order.id))
        assert [type(e).__name__ for e in events] == ["Registered", "DeliveryRecorded"]
        assert app.get_order(BUYER, "order-1").delivered_at == T0 - timedelta(days=1)

    def test_a_contradiction_is_refused_and_records_nothing(self, app: DisputeApplication) -> None:
        order, _ = app.put_order(SERVICE, "c-1", "order-1", facts())
        with pytest.raises(OrderFactsConflict):
            app.put_order(SERVICE, "c-2", "order-1", facts(amount=Money(9_000, "USD")))
        assert len(list(app.events.get(order.id))) == 1
