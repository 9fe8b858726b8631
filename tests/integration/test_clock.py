"""The sandbox clock: a persisted offset that only moves forward, and `advance_clock`,
which returns once every time-out now due has fired, in the order they fell due."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.dispute.domain import Dispute
from services.dispute.sandbox_clock import ClockStore, ServiceClock, advance_clock
from services.dispute.scheduler import DeadlineScheduler
from shared.clock import FixedClock
from tests.integration.app_commands import act
from tests.integration.test_scheduler import (
    BUYER,
    SELLER,
    T0,
    count_events,
    dispute,
    dispute_app,
    history,
    open_case,
)


def test_advancing_far_runs_a_case_through_a_chain_of_lapses(backend: dict[str, str]) -> None:
    clock = ServiceClock(FixedClock(T0))
    with dispute_app(backend, clock) as app:
        store = ClockStore(app)
        clock.bind(store)
        scheduler = DeadlineScheduler(app)
        chain = open_case(app, "o-chain", resolution="return_and_refund")
        quiet = open_case(app, "o-quiet")
        act(app, SELLER, "c", str(quiet), "offer", {"type": "full_refund"})
        act(app, BUYER, "c", str(quiet), "accept-offer")  # refund_pending: no time-out left

        now = advance_clock(clock, store, scheduler, timedelta(days=30))

        assert now == T0 + timedelta(days=30)
        case = dispute(app, chain)
        assert case.state == "closed"
        assert case.outcome == "return_not_shipped"
        # Each lapse happened when it fell due, not at the end of the jump.
        lapses = {type(e).__name__: e.timestamp for e in history(app, chain)[1:]}
        assert lapses == {
            "SellerResponseLapsed": T0 + timedelta(days=5),
            "ReturnShipmentLapsed": T0 + timedelta(days=15),
        }
        assert dispute(app, quiet).state == "refund_pending"
        assert scheduler.pending() == {}

    # The offset survives: a new store and clock on the same database see it.
    with dispute_app(backend, FixedClock(T0)) as app:
        again = ServiceClock(FixedClock(T0), ClockStore(app))
        assert again.offset == timedelta(days=30)
        assert again.now() == T0 + timedelta(days=30)


def test_advancing_in_steps_fires_only_what_is_due(backend: dict[str, str]) -> None:
    clock = ServiceClock(FixedClock(T0))
    with dispute_app(backend, clock) as app:
        store = ClockStore(app)
        scheduler = DeadlineScheduler(app, clock)
        dispute_id = open_case(app, "o-steps", resolution="return_and_refund")

        assert advance_clock(clock, store, scheduler, timedelta(days=4)) == T0 + timedelta(days=4)
        assert dispute(app, dispute_id).state == "awaiting_seller"

        advance_clock(clock, store, scheduler, timedelta(days=1))  # exactly due
        assert dispute(app, dispute_id).state == "awaiting_return"

        advance_clock(clock, store, scheduler, timedelta(days=9, hours=23))
        assert dispute(app, dispute_id).state == "awaiting_return"
        now = advance_clock(clock, store, scheduler, timedelta(hours=1))
        assert now == T0 + timedelta(days=15)
        assert dispute(app, dispute_id).outcome == "return_not_shipped"
        assert count_events(app, dispute_id, Dispute.ReturnShipmentLapsed) == 1
        assert store.load() == timedelta(days=15)


def test_the_clock_never_moves_back(backend: dict[str, str]) -> None:
    clock = ServiceClock(FixedClock(T0))
    with dispute_app(backend, clock) as app:
        store = ClockStore(app)
        scheduler = DeadlineScheduler(app, clock)
        advance_clock(clock, store, scheduler, timedelta(days=2))
        with pytest.raises(ValueError, match="forward"):
            advance_clock(clock, store, scheduler, timedelta(seconds=-1))
        with pytest.raises(ValueError, match="negative"):
            store.save(timedelta(days=-1))
        assert store.save(timedelta(days=1)) == timedelta(days=2)  # a smaller offset is ignored
        assert clock.refresh() == timedelta(days=2)
        assert clock.now() == T0 + timedelta(days=2)


def test_a_clock_sees_another_process_move_the_offset(backend: dict[str, str]) -> None:
    with dispute_app(backend, FixedClock(T0)) as app:
        here = ServiceClock(FixedClock(T0), ClockStore(app))
        there = ServiceClock(FixedClock(T0), ClockStore(app))
        unbound = ServiceClock(FixedClock(T0))
        there.move_to(timedelta(hours=3))
        assert here.now() == T0  # not yet re-read
        here.refresh()
        assert here.now() == T0 + timedelta(hours=3)
        assert unbound.now() == T0  # no store: the real time (here the base clock)

        auto = ServiceClock(FixedClock(T0), ClockStore(app), refresh_seconds=0)
        there.move_to(timedelta(hours=5))
        assert auto.now() == T0 + timedelta(hours=5)  # re-read on every call


def test_a_retried_advance_finishes_the_same_move_instead_of_doubling_it(
    backend: dict[str, str],
) -> None:
    clock = ServiceClock(FixedClock(T0))
    with dispute_app(backend, clock) as app:
        store = ClockStore(app)
        scheduler = DeadlineScheduler(app, clock)
        # The first attempt fixed its target, moved halfway, and its process died.
        assert store.advance_target("agent:a1 key-1", timedelta(days=6)) == timedelta(days=6)
        clock.bind(store)
        clock.move_to(timedelta(days=3))

        advance_clock(clock, store, scheduler, timedelta(days=6), request="agent:a1 key-1")
        assert clock.offset == timedelta(days=6)
        advance_clock(clock, store, scheduler, timedelta(days=6), request="agent:a1 key-1")
        assert clock.offset == timedelta(days=6)  # the same request again: the same move

        advance_clock(clock, store, scheduler, timedelta(days=6), request="agent:a1 key-2")
        assert clock.offset == timedelta(days=12)  # a new request: a new move
        advance_clock(clock, store, scheduler, timedelta(days=1))
        assert store.load() == timedelta(days=13)
