"""The figures of the later flows, from the projections, on SQLite and PostgreSQL: appeals
and how often they overturn the first ruling; chargebacks, the disputes they closed and
the double recoveries with the amount at risk; per seller the dispute rate (disputes per
registered order) and the mix of reasons. A hand-checkable seed, driven through
DisputeApplication with a fixed clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from services.dispute.application import DisputeApplication
from services.dispute.domain import OrderFacts
from services.dispute.domain.values import Actor, Role
from services.dispute.projections import DashboardQueries, Projector
from shared.clock import FixedClock
from shared.money import Money
from tests.conftest import postgres_env, sqlite_env
from tests.integration.app_commands import act

from .test_projections import PHOTO, T0, World, _drop_schema, _pg_schema

AGENT_1 = Actor(Role.AGENT, "agent-1")
AGENT_2 = Actor(Role.AGENT, "agent-2")
PAYMENTS = Actor(Role.SERVICE, "payments")
TRACKING = [{**PHOTO[0], "kind": "tracking"}]


class Cases(World):
    def order(self, name: str, buyer: str, seller: str, amount: int = 5_000) -> None:
        facts = OrderFacts.parse(
            buyer_id=buyer, seller_id=seller, amount=Money(amount, "USD"), payment_method="card",
            placed_at=self.clock.now() - timedelta(days=3),
        )  # fmt: skip
        self.app.put_order(Actor(Role.SERVICE, "orders"), self.cid(), f"order-{name}", facts)

    def review(self, name: str, buyer: str, seller: str, reason: str) -> None:
        self.open(name, buyer, seller, 5_000, reason)
        self.seller(name, "reject", reason="no", evidence=PHOTO)
        self.buyer(name, "escalate", reason="stuck")

    def agent(self, name: str, agent: Actor, **args: Any) -> None:
        act(self.app, agent, self.cid(), self.disputes[name], "rule", args)

    def chargeback(self, order: str, reference: str, amount: int) -> None:
        self.app.record_chargeback(
            PAYMENTS, self.cid(), f"order-{order}", reference=reference,
            amount=Money(amount, "USD"), reason="fraud", opened_at=self.clock.now(),
        )  # fmt: skip


def seed(c: Cases) -> None:
    c.clock.set(T0)
    # m1: four orders, three disputes (damaged, not_shipped, not_received)
    c.review("appeal-overturned", "b1", "m1", "damaged")
    c.agent("appeal-overturned", AGENT_1, decision="full_refund", rationale="photos")
    c.seller("appeal-overturned", "appeal", reason="intact", evidence=PHOTO)
    c.agent("appeal-overturned", AGENT_2, decision="seller_favoured", rationale="intact")
    c.open("cancel", "b2", "m1", 5_000, "not_shipped")  # charged back while open
    c.review("lapsed", "b3", "m1", "not_received")
    c.agent("lapsed", AGENT_1, decision="partial_refund", amount=2_000, rationale="half")
    c.order("m1-quiet", "b4", "m1")
    # m2: two orders, two disputes; one refunded and then charged back (double recovery)
    c.review("appeal-upheld", "b1", "m2", "wrong_item")
    c.agent("appeal-upheld", AGENT_1, decision="seller_favoured", rationale="as listed")
    c.buyer("appeal-upheld", "appeal", reason="look again", evidence=PHOTO)
    c.agent("appeal-upheld", AGENT_2, decision="seller_favoured", rationale="as listed")
    c.open("refunded", "b2", "m2", 4_000, "damaged")
    c.seller("refunded", "accept")
    c.service("refunded", "refund-paid", reference="re_1", paid_at=c.clock.now())
    # m3: two orders, no dispute; one charged back
    c.order("m3-a", "b5", "m3", 1_000)
    c.order("m3-b", "b5", "m3")
    c.later(hours=1)
    c.chargeback("cancel", "cb-cancel", 5_000)
    c.chargeback("refunded", "cb-double", 3_000)
    c.chargeback("m3-a", "cb-nodispute", 1_000)
    c.later(days=3, hours=1)
    assert c.app.fire_due_timeouts(c.disputes["lapsed"], c.cid()) == ["appeal_window_timeout"]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cases, Projector, DashboardQueries]]:
    schema = conninfo = None
    if request.param == "sqlite":
        env = sqlite_env(tmp_path_factory.mktemp("lifecycle"))
    else:
        conninfo = request.getfixturevalue("pg_conninfo")
        schema = _pg_schema(conninfo)
        env = postgres_env(conninfo, schema)
    app = DisputeApplication(env=env, clock=FixedClock(T0))
    try:
        cases = Cases(app, app.clock)  # type: ignore[arg-type]
        seed(cases)
        projector = Projector(app, batch_size=5)
        projector.catch_up()
        yield cases, projector, DashboardQueries(app, projector.views)
    finally:
        app.close()
        if schema is not None and conninfo is not None:
            _drop_schema(conninfo, schema)


def test_appeals_filed_and_how_often_they_overturn_the_first_ruling(seeded: Any) -> None:
    _, _, queries = seeded
    figures = queries.appeal_figures()
    assert figures.as_dict() == {
        "rulings": 3, "filed": 2, "by_buyer": 1, "by_seller": 1, "pending": 0, "decided": 2,
        "overturned": 1, "upheld": 1, "overturn_rate": 0.5, "appeal_rate": 2 / 3,
    }  # fmt: skip


def test_chargebacks_the_disputes_they_closed_and_the_double_recoveries(seeded: Any) -> None:
    cases, _, queries = seeded
    figures = queries.chargeback_figures()
    assert (figures.chargebacks, figures.disputes_closed, figures.without_dispute) == (3, 1, 1)
    assert figures.double_recoveries == 1
    assert figures.amount == {"USD": 9_000}
    assert figures.amount_at_risk == {"USD": 3_000}
    [double] = figures.double_recovery_rows
    assert (double["order_ref"], double["reference"], double["seller_id"]) == (
        "order-refunded", "cb-double", "m2",
    )  # fmt: skip
    assert (double["dispute_id"], double["amount"], double["amount_at_risk"]) == (
        cases.disputes["refunded"], 3_000, 3_000,
    )  # fmt: skip
    counts = queries.counts_by_outcome()
    assert counts["chargeback"] == 1 and counts["seller_favoured"] == 2


def test_per_seller_the_dispute_rate_and_the_mix_of_reasons(seeded: Any) -> None:
    _, _, queries = seeded
    sellers = {f.seller_id: f for f in queries.seller_figures()}
    assert set(sellers) == {"m1", "m2", "m3"}  # m3: orders, no dispute
    m1, m2, m3 = sellers["m1"], sellers["m2"], sellers["m3"]
    assert (m1.orders, m1.disputes, m1.dispute_rate) == (4, 3, 0.75)
    assert m1.reason_mix == {"damaged": 1 / 3, "not_received": 1 / 3, "not_shipped": 1 / 3}
    assert (m2.orders, m2.disputes, m2.dispute_rate) == (2, 2, 1.0)
    assert m2.reason_mix == {"damaged": 0.5, "wrong_item": 0.5}
    assert (m3.orders, m3.disputes, m3.dispute_rate, m3.reason_mix) == (2, 0, 0.0, {})
    [only] = queries.seller_figures("m3")
    assert only == m3


def test_an_appeal_past_its_sla_is_a_breach(seeded: Any) -> None:
    cases, _, queries = seeded
    cases.clock.set(T0 + timedelta(days=1))
    cases.review("late-appeal", "b9", "m9", "damaged")
    cases.agent("late-appeal", AGENT_1, decision="full_refund", rationale="x")
    cases.seller("late-appeal", "appeal", reason="no", evidence=PHOTO)
    Projector(cases.app).catch_up()
    later = T0 + timedelta(days=30)
    kinds = {(r["dispute_id"], r["kind"]) for r in queries.sla_breaches(later)}
    assert (cases.disputes["late-appeal"], "appeal_ruling") in kinds
    assert queries.appeal_figures().pending == 1


def test_rebuilding_the_new_views_from_zero_gives_the_same_rows(seeded: Any) -> None:
    _, projector, _ = seeded
    projector.catch_up()
    before = {name: projector.views[name].dump() for name in ("orders", "appeals")}
    report = projector.rebuild(["orders", "appeals"])
    assert report.views == ("orders", "appeals") and report.events > 0
    assert {name: projector.views[name].dump() for name in ("orders", "appeals")} == before
