"""The deadline scheduler: time-outs fire when due, once, and never early; the pending
table always equals a rebuild from the events. On SQLite and on PostgreSQL."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from services.dispute.application import DisputeApplication
from services.dispute.domain import Dispute, OrderFacts
from services.dispute.domain.values import Actor, Role
from services.dispute.infrastructure.pool import DatabaseUnavailable
from services.dispute.pending_deadlines import PENDING_TABLE, PendingRow
from services.dispute.scheduler import DeadlineScheduler
from shared.clock import Clock, FixedClock
from shared.money import Money
from tests.integration.app_commands import act

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
BUYER = Actor(Role.BUYER, "buyer-1")
SELLER = Actor(Role.SELLER, "seller-1")
AGENT = Actor(Role.AGENT, "agent-1")
SERVICE = Actor(Role.SERVICE, "orders")
ORDER_AMOUNT = 10_000


# Helpers shared by the time tests ----------------------------------------------------------


@contextmanager
def dispute_app(env: dict[str, str], clock: Clock) -> Iterator[DisputeApplication]:
    app = DisputeApplication(env=env, clock=clock)
    try:
        yield app
    finally:
        app.close()


def open_case(
    app: DisputeApplication,
    order_ref: str,
    *,
    resolution: str = "refund_only",
    amount: int = 6_000,
) -> UUID:
    """Registers an order delivered two days ago and opens a not_received dispute on it."""
    now = app.clock.now()
    facts = OrderFacts.parse(
        buyer_id=BUYER.id,
        seller_id=SELLER.id,
        amount=Money(ORDER_AMOUNT, "EUR"),
        payment_method="card",
        placed_at=now - timedelta(days=10),
        shipped_at=now - timedelta(days=8),
        delivered_at=now - timedelta(days=2),
    )
    app.put_order(SERVICE, f"reg-{order_ref}", order_ref, facts)
    dispute = app.open_dispute(
        BUYER,
        f"open-{order_ref}",
        order_ref=order_ref,
        reason="not_received",
        requested_resolution=resolution,
        amount=Money(amount, "EUR"),
        description="never arrived",
        evidence=[],
    )
    return dispute.id


def history(app: DisputeApplication, dispute_id: UUID) -> list[Dispute.Event]:
    return list(app.events.get(dispute_id))  # type: ignore[arg-type]


def count_events(app: DisputeApplication, dispute_id: UUID, cls: type) -> int:
    return sum(isinstance(e, cls) for e in history(app, dispute_id))


def dispute(app: DisputeApplication, dispute_id: UUID) -> Dispute:
    return app.repository.get(dispute_id)


# Seller silence, buyer lapse, nothing early ---------------------------------------------------


@pytest.mark.parametrize(
    ("resolution", "state"),
    [("refund_only", "refund_pending"), ("return_and_refund", "awaiting_return")],
)
def test_seller_silence_grants_the_buyers_request(
    backend: dict[str, str], resolution: str, state: str
) -> None:
    clock = FixedClock(T0)
    with dispute_app(backend, clock) as app:
        scheduler = DeadlineScheduler(app)
        dispute_id = open_case(app, "o-silent", resolution=resolution, amount=6_000)
        assert scheduler.run_once() == 0

        clock.advance(timedelta(days=5, seconds=1))
        assert scheduler.run_once() == 1

        case = dispute(app, dispute_id)
        assert case.state == state
        assert case.resolution is not None
        assert case.resolution.amount == 6_000
        assert case.resolution.via == "seller_response_timeout"
        lapsed = [
            e for e in history(app, dispute_id) if isinstance(e, Dispute.SellerResponseLapsed)
        ]
        assert len(lapsed) == 1
        assert lapsed[0].actor_role == Role.SYSTEM
        if state == "refund_pending":
            assert case.refund is not None and case.refund.amount == 6_000


def test_buyer_silence_after_an_offer_closes_the_case(backend: dict[str, str]) -> None:
    clock = FixedClock(T0)
    with dispute_app(backend, clock) as app:
        scheduler = DeadlineScheduler(app)
        dispute_id = open_case(app, "o-offer")
        clock.advance(timedelta(days=1))
        act(
            app,
            SELLER,
            "c-offer",
            str(dispute_id),
            "offer",
            {"type": "partial_refund", "amount": 2_000},
        )
        scheduler.sync()

        clock.advance(timedelta(days=5, seconds=1))  # 6 days after opening, 5 after the offer
        assert scheduler.run_once() == 1

        case = dispute(app, dispute_id)
        assert case.state == "closed"
        assert case.outcome == "buyer_lapsed"
        assert count_events(app, dispute_id, Dispute.SellerResponseLapsed) == 0
        assert count_events(app, dispute_id, Dispute.BuyerResponseLapsed) == 1
        scheduler.sync()
        assert dispute_id not in scheduler.pending()  # no deadline left: the row is gone


def test_nothing_fires_before_its_due_time(backend: dict[str, str]) -> None:
    clock = FixedClock(T0)
    with dispute_app(backend, clock) as app:
        scheduler = DeadlineScheduler(app)
        dispute_id = open_case(app, "o-early")
        due_at = dispute(app, dispute_id).deadlines[0].due_at
        assert due_at == T0 + timedelta(days=5)

        clock.set(due_at - timedelta(microseconds=1))
        assert scheduler.run_once() == 0
        assert scheduler.run_once() == 0
        assert dispute(app, dispute_id).state == "awaiting_seller"
        assert dispute(app, dispute_id).version == 1
        assert scheduler.pending()[dispute_id] == PendingRow(due_at=due_at, version=1)

        clock.set(due_at)
        assert scheduler.run_once() == 1
        assert dispute(app, dispute_id).state == "refund_pending"


def test_firing_again_has_no_effect(backend: dict[str, str]) -> None:
    clock = FixedClock(T0 + timedelta(days=6))
    with dispute_app(backend, clock) as app:
        clock.set(T0)
        dispute_id = open_case(app, "o-twice")
        clock.set(T0 + timedelta(days=6))
        scheduler = DeadlineScheduler(app)
        assert scheduler.run_once() == 1
        version = dispute(app, dispute_id).version
        # The row is stale until the next sync; firing it anyway must change nothing.
        assert scheduler.fire_due() == 0
        assert app.fire_due_timeouts(dispute_id, "again") == []
        assert scheduler.run_once() == 0
        assert dispute(app, dispute_id).version == version
        assert count_events(app, dispute_id, Dispute.SellerResponseLapsed) == 1


# Replicas ----------------------------------------------------------------------------------


def test_two_schedulers_racing_fire_each_timeout_once(backend: dict[str, str]) -> None:
    clock = FixedClock(T0)
    with dispute_app(backend, clock) as app_a, dispute_app(backend, clock) as app_b:
        ids = [open_case(app_a, f"o-race-{i}") for i in range(12)]
        schedulers = [DeadlineScheduler(app_a), DeadlineScheduler(app_b)]
        clock.advance(timedelta(days=6))
        start = threading.Barrier(2)
        fired: list[int] = [0, 0]
        errors: list[BaseException] = []

        def run(i: int) -> None:
            try:
                start.wait(timeout=10)
                for _ in range(3):
                    fired[i] += schedulers[i].run_once()
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors
        assert sum(fired) == len(ids)
        for dispute_id in ids:
            assert count_events(app_a, dispute_id, Dispute.SellerResponseLapsed) == 1
            assert dispute(app_b, dispute_id).state == "refund_pending"
        for scheduler in schedulers:
            scheduler.sync()
            assert scheduler.pending() == {}


# The pending table ---------------------------------------------------------------------------


def test_pending_table_always_equals_a_rebuild_from_zero(backend: dict[str, str]) -> None:
    rng = random.Random(20250301)
    clock = FixedClock(T0)
    with dispute_app(backend, clock) as app:
        scheduler = DeadlineScheduler(app, batch_size=3)  # small batches: many transactions
        follower = DeadlineScheduler(app, batch_size=2)  # a second follower of the same table
        ids: list[UUID] = []
        for step in range(40):
            move = rng.random()
            if move < 0.25 or not ids:
                ids.append(
                    open_case(
                        app,
                        f"o-tbl-{step}",
                        resolution=rng.choice(["refund_only", "return_and_refund"]),
                    )
                )
            elif move < 0.5:
                target = str(rng.choice(ids))
                case = dispute(app, UUID(target))
                actor, action, args = {
                    "awaiting_seller": (SELLER, "offer", {"type": "full_refund"}),
                    "negotiating": (
                        (BUYER, "revise", {"requested_resolution": "refund_only",
                                           "amount": 5_000})
                        if case.turn == "buyer"
                        else (SELLER, "reject", {"reason": "no"})
                    ),
                    "awaiting_return": (BUYER, "ship_return",
                                        {"carrier": "dhl", "tracking_number": "T1"}),
                }.get(case.state, (BUYER, "messages", {"body": "hello"}))  # fmt: skip
                if action in case.allowed_actions(actor):
                    act(app, actor, f"c-{step}", target, action, args)
            elif move < 0.7:
                clock.advance(timedelta(hours=rng.randint(1, 72)))
                scheduler.fire_due()
            elif move < 0.85:
                scheduler.sync()
            else:
                follower.sync()
            expected, last = scheduler.computed_from_zero(stop=scheduler.position())
            assert scheduler.pending() == expected
            assert last == scheduler.position()

        scheduler.sync()
        expected, _ = scheduler.computed_from_zero()
        assert scheduler.pending() == expected
        assert scheduler.position() == app.recorder.max_notification_id()
        assert scheduler.rebuild() == len(expected)
        assert scheduler.pending() == expected
        # Every row says when the dispute's earliest time-out is due.
        for dispute_id, row in expected.items():
            case = dispute(app, dispute_id)
            assert row.version == case.version
            assert row.due_at == min(
                d.due_at for d in case.deadlines if d.kind != "refund_payout" and d.kind != "ruling"
            )


def test_concurrent_followers_apply_each_event_once(backend: dict[str, str]) -> None:
    clock = FixedClock(T0)
    with dispute_app(backend, clock) as app, dispute_app(backend, clock) as other:
        ids = [open_case(app, f"o-follow-{i}") for i in range(15)]
        for dispute_id in ids[::2]:
            act(app, SELLER, "c", str(dispute_id), "offer", {"type": "full_refund"})
        followers = [DeadlineScheduler(app, batch_size=2), DeadlineScheduler(other, batch_size=3)]
        consumed = [0, 0]

        def run(i: int) -> None:
            consumed[i] = followers[i].sync()

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        # Between them they consumed the log exactly once.
        assert sum(consumed) == len(app.recorder.select_notifications(1, 10_000))
        expected, _ = followers[0].computed_from_zero()
        assert followers[0].pending() == expected
        assert {r.version for r in expected.values()} == {1, 2}


def test_a_failed_sync_leaves_table_and_position_unchanged(backend: dict[str, str]) -> None:
    """The table update and the position are one transaction: when writing the table
    fails halfway, neither moves, and the next sync applies every event once."""
    clock = FixedClock(T0)
    with dispute_app(backend, clock) as app:
        scheduler = DeadlineScheduler(app)
        first = open_case(app, "o-crash-1")
        scheduler.sync()
        before = (scheduler.pending(), scheduler.position())
        open_case(app, "o-crash-2")
        act(app, SELLER, "c", str(first), "offer", {"type": "full_refund"})

        # Break the table for real (a constraint the rows violate) and sync.
        with scheduler.recorder.transaction(commit=True) as c:
            table = scheduler.recorder.table(PENDING_TABLE)
            c.execute(f"ALTER TABLE {table} RENAME TO broken_pending")
        with pytest.raises(Exception, match=r"(?i)dispute_pending_deadlines|no such table"):
            scheduler.sync()
        with scheduler.recorder.transaction(commit=True) as c:
            broken = scheduler.recorder.table("broken_pending")
            c.execute(f"ALTER TABLE {broken} RENAME TO {PENDING_TABLE}")
        assert (scheduler.pending(), scheduler.position()) == before

        assert scheduler.sync() == (app.recorder.max_notification_id() or 0) - before[1]
        expected, _ = scheduler.computed_from_zero()
        assert scheduler.pending() == expected
        assert expected[first].version == 2


def test_due_query_uses_the_index_not_a_scan(tmp_path: object) -> None:
    from tests.conftest import sqlite_env

    env = sqlite_env(tmp_path)  # type: ignore[arg-type]
    with dispute_app(env, FixedClock(T0)) as app:
        scheduler = DeadlineScheduler(app)
        with scheduler.recorder.transaction(commit=False) as c:
            c.execute(
                f"EXPLAIN QUERY PLAN SELECT dispute_id, version FROM {PENDING_TABLE} "
                "WHERE check_at <= ? ORDER BY check_at LIMIT ?",
                (T0.isoformat(), 10),
            )
            plan = " ".join(str(row["detail"]) for row in c.fetchall())
        assert "USING INDEX" in plan and f"{PENDING_TABLE}_check_at_idx" in plan, plan
        assert scheduler.next_check_at() is None


def test_a_time_out_the_database_failed_to_fire_is_tried_again_next_round(
    backend: dict[str, str],
) -> None:
    """An outage ends the round (the next tries again a second later) instead of
    putting the dispute off by `retry_after`, as an unexpected error does."""
    clock = FixedClock(T0)
    with dispute_app(backend, clock) as app:
        scheduler = DeadlineScheduler(app, retry_after=timedelta(hours=1))
        dispute_id = open_case(app, "o-outage")
        clock.advance(timedelta(days=5, seconds=1))
        scheduler.sync()
        fire = app.fire_due_timeouts

        def unreachable(*_: object) -> list[str]:
            raise DatabaseUnavailable("database unreachable for 1.0 s: connection refused")

        app.fire_due_timeouts = unreachable  # type: ignore[method-assign, assignment]
        with pytest.raises(DatabaseUnavailable):
            scheduler.run_once()
        app.fire_due_timeouts = fire  # type: ignore[method-assign]

        assert scheduler.count_due() == 1  # not put off by an hour
        assert scheduler.run_once() == 1
        assert dispute(app, dispute_id).state != "awaiting_seller"
