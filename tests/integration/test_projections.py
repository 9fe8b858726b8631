"""Dashboard projections on SQLite and PostgreSQL, against a seeded set of disputes.

The disputes are driven through DisputeApplication commands with a fixed clock; the
views are then compared with the aggregates themselves, and the figures with cases small
enough to check by hand.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eventsourcing.persistence import Tracking
from psycopg import sql

from services.dispute.application import DisputeApplication
from services.dispute.domain import Dispute, InvalidInput, OrderFacts
from services.dispute.domain.values import Actor, Role
from services.dispute.projections import (
    DashboardQueries,
    DisputeFilters,
    PositionMoved,
    Projector,
)
from shared.clock import FixedClock
from shared.money import Money
from tests.conftest import PgConnInfo, connect, postgres_env, sqlite_env
from tests.integration.app_commands import act

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday
AGENT = Actor(Role.AGENT, "agent-1")
SERVICE = Actor(Role.SERVICE, "orders")
PHOTO = [{"kind": "photo", "uri": "https://files.example/p.jpg", "sha256": "a" * 64}]
REASONS = ["not_received", "late_delivery", "damaged", "wrong_item"]


@dataclass
class World:
    """A seeded store: the application, its clock, and the disputes by name."""

    app: DisputeApplication
    clock: FixedClock
    disputes: dict[str, str] = field(default_factory=dict)  # name -> dispute id
    buyers: dict[str, str] = field(default_factory=dict)  # dispute id -> buyer id
    sellers: dict[str, str] = field(default_factory=dict)
    _cid: Iterator[int] = field(default_factory=itertools.count)

    def cid(self) -> str:
        return f"req-{next(self._cid)}"

    def open(
        self,
        name: str,
        buyer: str,
        seller: str,
        amount: int,
        reason: str = "not_received",
        method: str = "card",
    ) -> str:
        facts = OrderFacts.parse(
            buyer_id=buyer,
            seller_id=seller,
            amount=Money(amount, "USD"),
            payment_method=method,
            placed_at=self.clock.now() - timedelta(days=3),
        )
        self.app.put_order(SERVICE, self.cid(), f"order-{name}", facts)
        dispute = self.app.open_dispute(
            Actor(Role.BUYER, buyer),
            self.cid(),
            order_ref=f"order-{name}",
            reason=reason,
            requested_resolution="refund_only",
            amount=Money(amount, "USD"),
            description="seeded",
            evidence=PHOTO,
        )
        self.disputes[name] = str(dispute.id)
        self.buyers[str(dispute.id)] = buyer
        self.sellers[str(dispute.id)] = seller
        return str(dispute.id)

    def buyer(self, name: str, action: str, **args: Any) -> None:
        dispute_id = self.disputes[name]
        act(
            self.app,
            Actor(Role.BUYER, self.buyers[dispute_id]),
            self.cid(),
            dispute_id,
            action,
            args,
        )

    def seller(self, name: str, action: str, **args: Any) -> None:
        dispute_id = self.disputes[name]
        act(
            self.app,
            Actor(Role.SELLER, self.sellers[dispute_id]),
            self.cid(),
            dispute_id,
            action,
            args,
        )

    def service(self, name: str, action: str, **args: Any) -> None:
        act(self.app, SERVICE, self.cid(), self.disputes[name], action, args)

    def aggregates(self) -> list[Dispute]:
        return [self.app.get_dispute(AGENT, i) for i in self.disputes.values()]

    def later(self, **delta: float) -> None:
        self.clock.advance(timedelta(**delta))


def seed(world: World) -> None:
    """24 bulk disputes (three per opening time, so that ties on opened_at occur), then
    five hand-checkable cases for sellers `s1` and `s2`."""
    w = world
    w.clock.set(T0 - timedelta(days=1))
    for i in range(24):
        w.open(f"bulk{i}", f"b{i % 3}", f"bulk-s{i % 4}", 1000 + 100 * i, REASONS[i % 4])
        if i % 3 == 2:
            w.later(minutes=10)
    w.clock.set(T0)
    w.open("d1", "b1", "s1", 10_000)  # accepted after 1 h, refund paid: refunded_full
    w.later(hours=1)
    w.open("d2", "b2", "s1", 5_000, "damaged", method="wallet")  # seller silent: timeout loss
    w.seller("d1", "accept")
    w.later(hours=1)
    w.open("d3", "b1", "s1", 8_000, "wrong_item")  # rejected after 2 h, escalated
    w.later(hours=1)
    w.open("d4", "b2", "s2", 3_000, "damaged")  # partial offer after 30 min, accepted, paid
    w.later(minutes=30)
    w.seller("d4", "offer", type="partial_refund", amount=1_000, message="sorry")
    w.later(minutes=30)
    w.open("d5", "b1", "s2", 2_000, "late_delivery")  # withdrawn
    w.seller("d3", "reject", reason="it was right", evidence=PHOTO)
    w.later(hours=1)
    w.buyer("d3", "escalate", reason="no")
    w.buyer("d4", "accept-offer")
    w.buyer("d5", "withdraw", reason="arrived")
    w.clock.set(T0 + timedelta(days=2))
    w.service("d1", "refund-paid", reference="r1", paid_at=w.clock.now())
    w.service("d4", "refund-paid", reference="r4", paid_at=w.clock.now())
    w.clock.set(T0 + timedelta(days=5, hours=1, minutes=1))
    assert w.app.fire_due_timeouts(w.disputes["d2"], w.cid()) == ["seller_response_timeout"]


def _pg_schema(conninfo: PgConnInfo) -> str:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with connect(conninfo) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    return schema


def _drop_schema(conninfo: PgConnInfo, schema: str) -> None:
    with connect(conninfo) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, Projector, DashboardQueries]]:
    """One seeded store per backend for the read-only tests of this module."""
    schema = conninfo = None
    if request.param == "sqlite":
        env = sqlite_env(tmp_path_factory.mktemp("projections"))
    else:
        conninfo = request.getfixturevalue("pg_conninfo")
        schema = _pg_schema(conninfo)
        env = postgres_env(conninfo, schema)
    app = DisputeApplication(env=env, clock=FixedClock(T0))
    try:
        world = World(app, app.clock)  # type: ignore[arg-type]
        seed(world)
        projector = Projector(app, batch_size=7)
        projector.catch_up()
        yield world, projector, DashboardQueries(app, projector.views)
    finally:
        app.close()
        if schema is not None and conninfo is not None:
            _drop_schema(conninfo, schema)


@pytest.fixture
def fresh(backend: dict[str, str]) -> Iterator[World]:
    """An empty store per test (for the tests that write)."""
    app = DisputeApplication(env=backend, clock=FixedClock(T0))
    try:
        yield World(app, app.clock)  # type: ignore[arg-type]
    finally:
        app.close()


# The summary view ------------------------------------------------------------------------


def _next_deadline(dispute: Dispute) -> datetime | None:
    return min((d.due_at for d in dispute.deadlines), default=None)


def test_summary_has_one_row_per_dispute_matching_its_aggregate(seeded: Any) -> None:
    world, _, queries = seeded
    aggregates = world.aggregates()
    assert len(aggregates) == 29
    for dispute in aggregates:
        row = queries.get_summary(str(dispute.id))
        assert row is not None
        refund = dispute.refund
        assert row == row | {
            "order_ref": dispute.order_ref,
            "buyer_id": dispute.buyer_id,
            "seller_id": dispute.seller_id,
            "reason": dispute.reason,
            "state": dispute.state,
            "version": dispute.version,
            "currency": dispute.currency,
            "order_amount": dispute.order_amount,
            "requested_amount": dispute.requested_amount,
            "opened_at": dispute.opened_at,
            "seller_responded_at": dispute.seller_responded_at,
            "escalated_at": dispute.escalated_at,
            "next_deadline_at": _next_deadline(dispute),
            "refund_amount": None if refund is None else refund.amount,
            "refund_paid_at": None if refund is None else refund.paid_at,
            "outcome": dispute.outcome,
            "closed_at": dispute.closed_at,
        }


def test_summary_records_timeout_losses_and_the_next_timeout_apart(seeded: Any) -> None:
    world, _, queries = seeded
    d2 = queries.get_summary(world.disputes["d2"])
    assert d2["timeout_loss"] is True
    assert d2["state"] == "refund_pending"
    assert d2["next_deadline_kind"] == "refund_payout"
    assert d2["next_timeout_at"] is None  # a payout date fires nothing
    d3 = queries.get_summary(world.disputes["d3"])
    assert (d3["timeout_loss"], d3["next_deadline_kind"], d3["next_timeout_kind"]) == (
        False,
        "ruling",
        None,
    )
    bulk = queries.get_summary(world.disputes["bulk0"])
    assert bulk["next_deadline_kind"] == bulk["next_timeout_kind"] == "seller_response"


# GET /v1/disputes ----------------------------------------------------------------------


def _expected(world: World, keep: Any = lambda d: True) -> list[str]:
    chosen = [d for d in world.aggregates() if keep(d)]
    chosen.sort(key=lambda d: (d.opened_at, str(d.id)), reverse=True)
    return [str(d.id) for d in chosen]


def _ids(queries: DashboardQueries, filters: dict[str, Any], viewer: Actor = AGENT) -> list[str]:
    page = queries.list_disputes(filters, None, 200, viewer=viewer)
    assert page.next_cursor is None
    return [r["dispute_id"] for r in page.items]


FILTERS: list[tuple[str, dict[str, Any], Any]] = [
    ("none", {}, lambda d: True),
    ("state", {"state": "closed"}, lambda d: d.state == "closed"),
    (
        "states",
        {"state": ["refund_pending", "under_review"]},
        lambda d: d.state in ("refund_pending", "under_review"),
    ),
    ("reason", {"reason": "damaged"}, lambda d: d.reason == "damaged"),
    ("seller", {"seller_id": "s1"}, lambda d: d.seller_id == "s1"),
    ("buyer", {"buyer_id": "b1"}, lambda d: d.buyer_id == "b1"),
    (
        "opened_between",
        {"opened_from": T0 - timedelta(hours=23, minutes=40), "opened_to": T0 + timedelta(hours=2)},
        lambda d: T0 - timedelta(hours=23, minutes=40) <= d.opened_at < T0 + timedelta(hours=2),
    ),
    (
        "next_deadline_before",
        {"next_deadline_before": T0 + timedelta(days=4, hours=1)},
        lambda d: (
            _next_deadline(d) is not None and _next_deadline(d) < T0 + timedelta(days=4, hours=1)
        ),
    ),
    (
        "combined",
        {"buyer_id": "b1", "reason": ["damaged", "not_received", "wrong_item"], "opened_from": T0},
        lambda d: (
            d.buyer_id == "b1"
            and d.reason in ("damaged", "not_received", "wrong_item")
            and d.opened_at >= T0
        ),
    ),
]


@pytest.mark.parametrize(("name", "filters", "keep"), FILTERS, ids=[f[0] for f in FILTERS])
def test_list_filters_match_the_aggregates(
    seeded: Any, name: str, filters: dict[str, Any], keep: Any
) -> None:
    world, _, queries = seeded
    expected = _expected(world, keep)
    assert expected or name == "none"
    assert _ids(queries, filters) == expected


def test_each_filter_narrows_the_list(seeded: Any) -> None:
    _world, _, queries = seeded
    everything = _ids(queries, {})
    for _, filters, _keep in FILTERS[1:]:
        assert 0 < len(_ids(queries, filters)) < len(everything)


@pytest.mark.parametrize("page_size", [1, 2, 5, 7, 29, 50])
def test_cursor_pages_return_every_row_once_in_order(seeded: Any, page_size: int) -> None:
    world, _, queries = seeded
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = queries.list_disputes({}, cursor, page_size, viewer=AGENT)
        assert len(page.items) <= page_size
        seen += [r["dispute_id"] for r in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        assert len(page.items) == page_size
        cursor = page.next_cursor
    assert seen == _expected(world)
    assert pages == max(1, -(-len(seen) // page_size))


def test_cursor_pages_keep_the_filters(seeded: Any) -> None:
    world, _, queries = seeded
    filters = {"buyer_id": "b2", "state": "awaiting_seller"}
    page1 = queries.list_disputes(filters, None, 3, viewer=AGENT)
    page2 = queries.list_disputes(filters, page1.next_cursor, 3, viewer=AGENT)
    got = [r["dispute_id"] for r in page1.items + page2.items]
    expected = _expected(world, lambda d: d.buyer_id == "b2" and d.state == "awaiting_seller")
    assert got == expected[:6]


def test_a_party_sees_only_its_own_disputes(seeded: Any) -> None:
    world, _, queries = seeded
    b1, s2 = Actor(Role.BUYER, "b1"), Actor(Role.SELLER, "s2")
    assert _ids(queries, {}, b1) == _expected(world, lambda d: d.buyer_id == "b1")
    assert _ids(queries, {"seller_id": "s1"}, b1) == _expected(
        world, lambda d: d.buyer_id == "b1" and d.seller_id == "s1"
    )
    assert _ids(queries, {"buyer_id": "b2"}, b1) == []  # asking for someone else's
    assert _ids(queries, {}, s2) == [world.disputes["d5"], world.disputes["d4"]]
    assert _ids(queries, {"seller_id": "s1"}, s2) == []


def test_bad_cursor_and_limit_are_refused(seeded: Any) -> None:
    _, _, queries = seeded
    for cursor in ["not-a-cursor", "WyJ4Il0", ""]:
        with pytest.raises(InvalidInput) as refused:
            queries.list_disputes({}, cursor, 5, viewer=AGENT)
        assert refused.value.field == "cursor"
    for limit in [0, -1, 201]:
        with pytest.raises(InvalidInput):
            queries.list_disputes({}, None, limit, viewer=AGENT)
    with pytest.raises(InvalidInput):
        queries.list_disputes({"colour": "red"}, None, 5, viewer=AGENT)
    with pytest.raises(InvalidInput):
        queries.list_disputes(
            DisputeFilters(opened_from=datetime(2026, 1, 1)), None, 5, viewer=AGENT
        )


# Figures ----------------------------------------------------------------------------------


def test_seller_figures_for_hand_checked_cases(seeded: Any) -> None:
    _, _, queries = seeded
    [s1] = queries.seller_figures("s1")
    assert s1.as_dict() == {
        "seller_id": "s1",
        "disputes": 3,
        "open": 2,  # d2 refund pending, d3 under review
        "closed": 1,
        "by_reason": {"damaged": 1, "not_received": 1, "wrong_item": 1},
        "timeout_losses": 1,  # d2
        "refunded": 1,  # d1
        "refund_rate": 1.0,
        "amount_refunded": {"USD": 10_000},
        "responded": 2,  # d1 accepted after 1 h, d3 rejected after 2 h
        "median_response_seconds": 5400.0,
        "orders": 3,  # each of s1's orders is disputed
        "dispute_rate": 1.0,
        "reason_mix": {"damaged": 1 / 3, "not_received": 1 / 3, "wrong_item": 1 / 3},
    }
    [s2] = queries.seller_figures("s2")
    assert (s2.disputes, s2.closed, s2.refunded, s2.refund_rate, s2.timeout_losses) == (
        2,
        2,
        1,
        0.5,
        0,
    )
    assert s2.amount_refunded == {"USD": 1_000}
    assert (s2.responded, s2.median_response_seconds) == (1, 1800.0)
    everyone = queries.seller_figures()
    assert [f.seller_id for f in everyone] == [
        "bulk-s0",
        "bulk-s1",
        "bulk-s2",
        "bulk-s3",
        "s1",
        "s2",
    ]
    assert sum(f.disputes for f in everyone) == 29
    assert queries.seller_figures("nobody") == []


def test_counts_by_state_outcome_and_day(seeded: Any) -> None:
    _world, _, queries = seeded
    assert queries.counts_by_state() == {
        "awaiting_seller": 24,
        "closed": 3,
        "refund_pending": 1,
        "under_review": 1,
    }
    assert queries.counts_by_outcome() == {
        "refunded_full": 1,
        "refunded_partial": 1,
        "withdrawn": 1,
    }
    days = {d["day"]: d for d in queries.daily_counts("2026-03-01", "2026-03-31")}
    assert sorted(days) == ["2026-03-01", "2026-03-02", "2026-03-04", "2026-03-07"]
    assert days["2026-03-01"]["opened"] == {r: 6 for r in REASONS}
    assert days["2026-03-02"]["opened"] == {
        "not_received": 1,
        "damaged": 2,
        "wrong_item": 1,
        "late_delivery": 1,
    }
    assert days["2026-03-02"]["entered"] == {
        "awaiting_seller": 5,
        "refund_pending": 2,  # d1 accepted, d4 offer accepted
        "negotiating": 2,  # d3 rejected, d4 offered
        "under_review": 1,
        "closed": 1,  # d5 withdrawn
    }
    assert days["2026-03-02"]["closed"] == {"withdrawn": 1}
    assert days["2026-03-04"] == {
        "day": "2026-03-04",
        "opened": {},
        "entered": {"closed": 2},
        "closed": {"refunded_full": 1, "refunded_partial": 1},
    }
    assert days["2026-03-07"]["entered"] == {"refund_pending": 1}  # d2's time-out
    assert queries.daily_counts("2026-03-03", "2026-03-03") == []


# Deadlines ----------------------------------------------------------------------------------


def _due(world: World, now: datetime, within: timedelta) -> list[tuple[str, str]]:
    return sorted(
        (str(d.id), dl.kind.value)
        for d in world.aggregates()
        for dl in d.deadlines
        if now <= dl.due_at < now + within
    )


@pytest.mark.parametrize("hours_from_t0", [-1, 100, 120, 130, 200])
def test_deadlines_due_in_the_next_24_hours_match_the_aggregates(
    seeded: Any, hours_from_t0: int
) -> None:
    world, _, queries = seeded
    now = T0 + timedelta(hours=hours_from_t0)
    got = queries.deadlines_due(now)
    assert sorted((r["dispute_id"], r["kind"]) for r in got) == _due(
        world, now, timedelta(hours=24)
    )
    assert [r["due_at"] for r in got] == sorted(r["due_at"] for r in got)
    assert all(now <= r["due_at"] < now + timedelta(hours=24) for r in got)


def test_some_chosen_times_do_have_deadlines_due(seeded: Any) -> None:
    world, _, queries = seeded
    # The bulk disputes' seller windows end 5 days after opening (T0 - 1 day + ...).
    assert len(queries.deadlines_due(T0 + timedelta(days=3, hours=12))) == 24
    ruling = next(d for d in world.app.get_dispute(AGENT, world.disputes["d3"]).deadlines)
    due = queries.deadlines_due(ruling.due_at - timedelta(hours=1), timedelta(hours=2))
    assert [(r["dispute_id"], r["kind"]) for r in due] == [(world.disputes["d3"], "ruling")]


def test_reviews_past_their_ruling_sla(seeded: Any) -> None:
    world, _, queries = seeded
    d3 = world.app.get_dispute(AGENT, world.disputes["d3"])
    [ruling] = [d for d in d3.deadlines if d.kind == "ruling"]
    assert ruling.due_at == datetime(2026, 3, 11, 14, 0, tzinfo=UTC)  # 7 business days
    assert queries.sla_breaches(ruling.due_at) == []
    [breach] = queries.sla_breaches(ruling.due_at + timedelta(seconds=1))
    assert (breach["dispute_id"], breach["state"], breach["escalated_at"]) == (
        str(d3.id),
        "under_review",
        T0 + timedelta(hours=5),
    )


def test_refunds_past_their_expected_payout(seeded: Any) -> None:
    world, _, queries = seeded
    d2 = world.app.get_dispute(AGENT, world.disputes["d2"])
    assert d2.refund is not None
    expected_by = d2.refund.expected_by
    assert queries.payouts_overdue(expected_by) == []
    [late] = queries.payouts_overdue(expected_by + timedelta(minutes=1))
    assert late["dispute_id"] == str(d2.id)
    assert (late["refund_amount"], late["payment_method"], late["state"]) == (
        5_000,
        "wallet",
        "refund_pending",
    )
    # d1 and d4 were paid: never overdue, however late it gets.
    assert [r["dispute_id"] for r in queries.payouts_overdue(T0 + timedelta(days=400))] == [
        str(d2.id)
    ]


# Lag, and the projector's guarantees --------------------------------------------------------


def test_lag_is_zero_after_catching_up_and_counts_what_is_behind(fresh: World) -> None:
    w = fresh
    projector = Projector(w.app)
    queries = DashboardQueries(w.app, projector.views)
    assert queries.lag()["events_behind"] == 0  # nothing recorded yet
    w.open("x", "b1", "s1", 1_000)
    projector.catch_up()
    lag = queries.lag()
    assert (lag["events_behind"], lag["seconds_behind"]) == (0, 0.0)
    w.later(hours=1)
    w.seller("x", "offer", type="full_refund", message="ok")
    w.later(hours=2)
    w.buyer("x", "accept-offer")
    lag = queries.lag()
    assert (lag["events_behind"], lag["seconds_behind"]) == (2, 3 * 3600.0)
    assert lag["views"]["summary"]["events_behind"] == lag["views"]["daily"]["events_behind"] == 2
    assert projector.run_once() > 0
    assert queries.lag()["events_behind"] == 0
    assert queries.get_summary(w.disputes["x"])["state"] == "refund_pending"


def test_rebuild_from_zero_equals_the_incremental_views(fresh: World) -> None:
    w = fresh
    w.clock.set(T0)
    projector = Projector(w.app, batch_size=3)
    for i in range(6):
        w.open(f"o{i}", f"b{i % 2}", "s1", 1_000 + i)
        projector.run_once()  # interleave: views built while commands happen
        w.later(minutes=5)
        if i % 2:
            w.seller(f"o{i}", "reject", reason="no")
        else:
            w.seller(f"o{i}", "accept")
    projector.catch_up()
    before = {name: view.dump() for name, view in projector.views.items()}
    report = projector.rebuild()
    assert report.events == len(w.app.recorder.select_notifications(None, 10_000))
    assert {name: view.dump() for name, view in projector.views.items()} == before
    projector.rebuild(["daily"], drop=True)
    assert projector.views["daily"].dump() == before["daily"]
    with pytest.raises(ValueError, match="unknown view"):
        projector.rebuild(["nope"])


def test_a_batch_read_after_a_stale_position_is_not_applied(fresh: World) -> None:
    """Two projectors on one view: the slower one's batch is refused, never applied twice."""
    w = fresh
    w.open("x", "b1", "s1", 1_000)
    first, second = Projector(w.app), Projector(w.app)
    first.catch_up()
    counts = first.views["daily"].dump()
    view = second.views["daily"]
    with pytest.raises(PositionMoved):
        view.process_batch(None, Tracking(w.app.name, 1), [])
    assert second.catch_up() == 0
    assert view.dump() == counts


def test_views_live_in_the_events_database(backend: dict[str, str]) -> None:
    app = DisputeApplication(env=backend, clock=FixedClock(T0))
    try:
        projector = Projector(app)
        view = projector.views["summary"]
        assert view.datastore is app.recorder.datastore  # type: ignore[attr-defined]
    finally:
        app.close()
