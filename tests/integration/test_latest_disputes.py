"""The disputes each process keeps at their newest version (services.dispute.latest), on
SQLite and on PostgreSQL: what another process wrote is seen, a failed command leaves the
kept copy as it was, a lost race forgets it, and the cache is bounded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.dispute.application import DisputeApplication
from services.dispute.domain import ConcurrentUpdate, Dispute, OrderFacts
from services.dispute.domain.values import Actor, Role
from services.dispute.latest import LatestDisputes
from shared.clock import FixedClock
from shared.money import Money
from tests.integration.app_commands import act

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BUYER = Actor(Role.BUYER, "buyer-1")
SELLER = Actor(Role.SELLER, "seller-1")
SERVICE = Actor(Role.SERVICE, "orders")


class Boom(Exception):
    pass


@pytest.fixture
def apps(backend: dict[str, str]) -> Iterator[tuple[DisputeApplication, DisputeApplication]]:
    """Two applications on one store, as two server processes are."""
    first = DisputeApplication(env=backend, clock=FixedClock(T0))
    second = DisputeApplication(env={**backend, "CREATE_TABLE": "n"}, clock=FixedClock(T0))
    try:
        yield first, second
    finally:
        first.close()
        second.close()


def open_dispute(app: DisputeApplication, order_ref: str = "order-1") -> Dispute:
    facts = OrderFacts.parse(
        buyer_id=BUYER.id, seller_id=SELLER.id, amount=Money(10_000, "USD"),
        payment_method="card", placed_at=T0 - timedelta(days=10),
    )  # fmt: skip
    app.put_order(SERVICE, "c-order", order_ref, facts)
    return app.open_dispute(
        BUYER, "c-open", order_ref=order_ref, reason="not_received",
        requested_resolution="refund_only", amount=Money(10_000, "USD"), description="x",
        evidence=[],
    )  # fmt: skip


def message(app: DisputeApplication, dispute: Dispute, body: str, **kwargs: Any) -> Dispute:
    return act(app, BUYER, "c-" + body, dispute.id, "messages", {"body": body}, **kwargs)


def bodies(dispute: Dispute) -> list[str]:
    return [m["body"] for m in dispute.messages]


def test_a_command_sees_what_another_process_wrote(
    apps: tuple[DisputeApplication, DisputeApplication],
) -> None:
    first, second = apps
    dispute = open_dispute(first)
    message(first, dispute, "one")  # kept by the first at version 2
    assert first.latest.get(dispute.id) is not None
    message(second, dispute, "two")  # version 3, written by the other process
    after = message(first, dispute, "three")
    assert after.version == 4
    assert bodies(after) == ["one", "two", "three"]
    assert bodies(first.get_dispute(BUYER, dispute.id)) == ["one", "two", "three"]
    assert bodies(second.get_dispute(BUYER, dispute.id)) == ["one", "two", "three"]


def test_a_command_that_fails_while_saving_leaves_the_kept_copy_unchanged(
    apps: tuple[DisputeApplication, DisputeApplication],
) -> None:
    first, _ = apps
    dispute = open_dispute(first)
    message(first, dispute, "one")

    def fail(aggregate: Any, created: bool) -> object:
        assert bodies(aggregate) == ["one", "two"]  # the command changed its own copy
        raise Boom

    with pytest.raises(Boom):
        message(first, dispute, "two", respond=fail)
    kept = first.latest.get(dispute.id)
    assert kept is not None and kept.version == 2 and bodies(kept) == ["one"]
    assert not kept.pending_events
    again = message(first, dispute, "three")
    assert again.version == 3 and bodies(again) == ["one", "three"]


def test_a_lost_race_forgets_the_kept_copy_and_the_next_command_loads_afresh(
    apps: tuple[DisputeApplication, DisputeApplication],
) -> None:
    first, second = apps
    dispute = open_dispute(first)

    def other_process_writes_first(aggregate: Any, created: bool) -> object:
        message(second, dispute, "theirs")  # takes version 2 before ours is appended
        return None

    with pytest.raises(ConcurrentUpdate):
        message(first, dispute, "ours", respond=other_process_writes_first)
    assert first.latest.get(dispute.id) is None
    after = message(first, dispute, "ours again")
    assert after.version == 3 and bodies(after) == ["theirs", "ours again"]


def test_what_a_caller_is_given_is_its_own(
    apps: tuple[DisputeApplication, DisputeApplication],
) -> None:
    first, _ = apps
    dispute = open_dispute(first)
    given = first.get_dispute(BUYER, dispute.id)
    given.messages.append({"body": "scribbled"})  # type: ignore[typeddict-item]
    assert bodies(first.get_dispute(BUYER, dispute.id)) == []


def test_the_cache_is_bounded_and_can_be_turned_off(backend: dict[str, str]) -> None:
    small = DisputeApplication(env=backend, clock=FixedClock(T0), cached_disputes=2)
    off = DisputeApplication(env={**backend, "CREATE_TABLE": "n"}, cached_disputes=0)
    try:
        opened = [open_dispute(small, f"order-{n}") for n in range(3)]
        assert len(small.latest) == 2
        assert small.latest.get(opened[0].id) is None  # the least recently used went
        for dispute in opened:
            assert off.get_dispute(BUYER, dispute.id).version == 1
        assert len(off.latest) == 0
    finally:
        small.close()
        off.close()


def test_the_records_kept_in_all_are_bounded_and_a_case_too_big_is_not_kept(
    backend: dict[str, str],
) -> None:
    app = DisputeApplication(env=backend, clock=FixedClock(T0))
    app.latest = LatestDisputes(maxsize=100, max_records=5)
    try:
        small = open_dispute(app, "order-small")  # weight 1
        big = open_dispute(app, "order-big")
        for n in range(3):
            big = message(app, big, f"m{n}")  # weight 4
        assert app.latest.records == 5
        other = open_dispute(app, "order-other")  # 5 + 1 > 5: the least recent goes
        assert app.latest.get(small.id) is None
        assert app.latest.records == 5 and app.latest.get(other.id) is not None
        for n in range(3, 6):
            big = message(app, big, f"m{n}")  # up to weight 7: more than the whole budget
            assert app.latest.records <= 5
        assert app.latest.get(big.id) is None
        assert bodies(app.get_dispute(BUYER, big.id)) == [f"m{n}" for n in range(6)]
        assert app.latest.get(big.id) is None  # read afresh, and still not kept
    finally:
        app.close()
