"""`GET /v1/disputes` and `/v1/stats/...` through the HTTP layer, on SQLite and PostgreSQL.

Disputes are seeded through the API; the projector is then caught up in-process, since
both endpoints answer from the dashboard views (and say how far behind they are).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.dispute.projections import Projector

from .http_support import PHOTO, Api, running_service

MONEY = {"amount": 5000, "currency": "USD"}
STATS = (
    "sellers", "deadlines-due", "sla-breaches", "payouts-overdue", "daily", "counts",
    "appeals", "chargebacks",
)  # fmt: skip


@dataclass
class Seeded:
    api: Api
    ids: dict[str, str]  # name -> dispute id

    def catch_up(self) -> int:
        application = self.api.client.app.state.application  # type: ignore[attr-defined]
        return Projector(application).catch_up()

    def get(self, path: str, role: str = "agent", principal: str = "agent-1", **params: Any):  # type: ignore[no-untyped-def]
        return self.api.client.get(
            path,
            params=params,
            headers={
                "X-Internal-Token": "test-internal-token-0123456789",
                "X-Principal-Role": role,
                "X-Principal-Id": principal,
            },
        )

    def ok(self, path: str, role: str = "agent", principal: str = "agent-1", **params: Any) -> Any:
        response = self.get(path, role, principal, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def walk(self, role: str = "agent", principal: str = "agent-1", **params: Any) -> list[dict]:
        """Every page of GET /v1/disputes; returns the rows in order."""
        rows: list[dict] = []
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = self.ok("/v1/disputes", role, principal, **query)
            rows += page["data"]
            cursor = page["next_cursor"]
            if cursor is None:
                return rows


def _ok(response: Any, state: str) -> None:
    assert response.status_code == 200, response.text
    assert response.json()["state"] == state


@pytest.fixture
def seeded(backend: dict[str, str]) -> Iterator[Seeded]:
    with running_service(backend) as api:
        ids: dict[str, str] = {}

        def open_(name: str, buyer: str, seller: str, reason: str = "damaged") -> dict:
            order = api.register_order(buyer=buyer, seller=seller)
            dispute = api.open_dispute(order, buyer=buyer, reason=reason)
            ids[name] = dispute["id"]
            return dispute

        d1 = open_("d1", "b1", "s1")  # accepted, refund paid: refunded_full
        _ok(api.act(d1, "accept", "seller", "s1"), "refund_pending")
        paid = {"reference": "re_1", "paid_at": datetime.now(UTC).isoformat()}
        _ok(api.act(d1, "refund-paid", "service", "payments", paid), "closed")
        d2 = open_("d2", "b1", "s1")  # withdrawn
        _ok(api.act(d2, "withdraw", "buyer", "b1", {"reason": "sorted"}), "closed")
        open_("d3", "b2", "s2", "not_received")
        open_("d4", "b2", "s2", "not_received")
        open_("d5", "b3", "s1")
        d6 = open_("d6", "b3", "s2")  # accepted: refund pending
        _ok(api.act(d6, "accept", "seller", "s2"), "refund_pending")
        yield Seeded(api, ids)


@pytest.fixture
def bare(backend: dict[str, str]) -> Iterator[Seeded]:
    with running_service(backend) as api:
        yield Seeded(api, {})


def test_lag_is_reported_before_and_is_zero_after_catch_up(seeded: Seeded) -> None:
    before = seeded.ok("/v1/disputes")
    assert before["data"] == [] and before["next_cursor"] is None
    assert before["lag"]["events"] > 0
    counts = seeded.ok("/v1/stats/counts")
    assert counts["lag"]["events"] > 0 and counts["total"] == 0
    assert seeded.catch_up() > 0
    after = seeded.ok("/v1/disputes")
    assert after["lag"] == {"events": 0, "seconds": 0.0}
    assert len(after["data"]) == 6
    for path in STATS:
        assert seeded.ok(f"/v1/stats/{path}")["lag"] == {"events": 0, "seconds": 0.0}, path
    # A new write shows in the lag until the projector has processed it.
    seeded.api.open_dispute(buyer="b9")
    assert seeded.ok("/v1/disputes")["lag"]["events"] > 0
    seeded.catch_up()
    assert seeded.ok("/v1/disputes")["lag"]["events"] == 0


def test_rows_filters_and_cursor_pagination(seeded: Seeded) -> None:
    seeded.catch_up()
    ids = seeded.ids
    rows = seeded.walk(limit=2)
    assert len(rows) == 6 and {r["id"] for r in rows} == set(ids.values())  # each exactly once
    keys = [(r["opened_at"], r["id"]) for r in rows]
    assert keys == sorted(keys, reverse=True)  # newest first
    by_id = {r["id"]: r for r in rows}
    d1 = by_id[ids["d1"]]
    assert d1["state"] == "closed" and d1["outcome"] == "refunded_full"
    assert d1["amount"] == MONEY and d1["refund"] == MONEY and d1["closed_at"] is not None
    assert d1["buyer_id"] == "b1" and d1["seller_id"] == "s1" and d1["order_id"]
    d3 = by_id[ids["d3"]]
    assert d3["state"] == "awaiting_seller" and d3["outcome"] is None and d3["refund"] is None
    assert d3["next_deadline"]["kind"] and d3["next_deadline"]["due_at"]

    def found(**params: Any) -> set[str]:
        return {r["id"] for r in seeded.walk(limit=2, **params)}

    assert found(state="closed") == {ids["d1"], ids["d2"]}
    assert found(reason="not_received") == {ids["d3"], ids["d4"]}
    assert found(seller_id="s2") == {ids["d3"], ids["d4"], ids["d6"]}
    assert found(buyer_id="b3", seller_id="s1") == {ids["d5"]}
    assert found(state="refund_pending", seller_id="s2") == {ids["d6"]}
    pivot = by_id[ids["d4"]]["opened_at"]
    newer = {r["id"] for r in rows if r["opened_at"] >= pivot}
    assert found(opened_after=pivot) == newer
    assert found(opened_before=pivot) == set(ids.values()) - newer
    due = by_id[ids["d3"]]["next_deadline"]["due_at"]
    before_due = {
        r["id"]
        for r in rows
        if r["next_deadline"] is not None and r["next_deadline"]["due_at"] < due
    }
    assert found(deadline_before=due) == before_due
    assert ids["d3"] not in before_due
    later = (datetime.fromisoformat(due) + timedelta(seconds=1)).isoformat()
    assert ids["d3"] in found(deadline_before=later)


def test_a_party_sees_only_its_own(seeded: Seeded) -> None:
    seeded.catch_up()
    ids = seeded.ids
    assert {r["id"] for r in seeded.walk("buyer", "b1", limit=1)} == {ids["d1"], ids["d2"]}
    assert seeded.walk("buyer", "b1", buyer_id="b2") == []
    assert {r["id"] for r in seeded.walk("buyer", "b1", seller_id="s1")} == {
        ids["d1"],
        ids["d2"],
    }
    seller = {r["id"] for r in seeded.walk("seller", "s2")}
    assert seller == {ids["d3"], ids["d4"], ids["d6"]}
    assert seeded.walk("seller", "s2", seller_id="s1") == []


def test_stats_match_the_seeded_cases(seeded: Seeded) -> None:
    seeded.catch_up()
    ids = seeded.ids
    counts = seeded.ok("/v1/stats/counts")
    assert counts["total"] == 6
    assert counts["by_state"] == {"awaiting_seller": 3, "closed": 2, "refund_pending": 1}
    assert counts["by_outcome"] == {"refunded_full": 1, "withdrawn": 1}

    sellers = {s["seller_id"]: s for s in seeded.ok("/v1/stats/sellers")["data"]}
    assert set(sellers) == {"s1", "s2"}
    s1 = sellers["s1"]
    assert (s1["disputes"], s1["open"], s1["closed"], s1["refunded"]) == (3, 1, 2, 1)
    assert s1["refund_rate"] == 0.5 and s1["amount_refunded"] == [MONEY]
    assert s1["by_reason"] == {"damaged": 3}
    assert (s1["orders"], s1["dispute_rate"], s1["reason_mix"]) == (3, 1.0, {"damaged": 1.0})
    s2 = sellers["s2"]
    assert (s2["disputes"], s2["open"], s2["closed"], s2["refund_rate"]) == (3, 3, 0, None)
    assert s2["by_reason"] == {"damaged": 1, "not_received": 2}
    assert s2["reason_mix"] == {"damaged": 1 / 3, "not_received": 2 / 3}
    only = seeded.ok("/v1/stats/sellers", seller_id="s2")["data"]
    assert [s["seller_id"] for s in only] == ["s2"]

    due = seeded.ok("/v1/stats/deadlines-due", role="auditor", principal="audit")
    as_of, until = datetime.fromisoformat(due["as_of"]), datetime.fromisoformat(due["until"])
    assert until - as_of == timedelta(hours=24)
    open_ids = {ids[n] for n in ("d3", "d4", "d5", "d6")}
    for row in due["data"]:
        assert as_of <= datetime.fromisoformat(row["due_at"]) < until
        assert row["dispute_id"] in open_ids
    # Nothing is overdue yet: the cases were opened moments ago.
    assert seeded.ok("/v1/stats/sla-breaches", role="service", principal="ops")["data"] == []
    assert seeded.ok("/v1/stats/payouts-overdue")["data"] == []

    today = datetime.now(UTC).date()
    daily = seeded.ok(
        "/v1/stats/daily",
        **{"from": (today - timedelta(days=1)).isoformat(), "to": today.isoformat()},
    )
    assert daily["from"] == (today - timedelta(days=1)).isoformat()
    opened = sum(sum(d["opened"].values()) for d in daily["data"])
    closed = sum(sum(d["closed"].values()) for d in daily["data"])
    assert opened == 6 and closed == 2
    assert seeded.ok("/v1/stats/daily")["to"] == today.isoformat()  # default: the last 30 days


def test_appeal_and_chargeback_figures(seeded: Seeded) -> None:
    api, ids = seeded.api, seeded.ids
    _ok(api.act(ids["d3"], "reject", "seller", "s2", {"reason": "no", "evidence": []}),
        "negotiating")  # fmt: skip
    _ok(api.act(ids["d3"], "escalate", "buyer", "b2", {"reason": "stuck"}), "under_review")
    ruling = {"decision": "full_refund", "rationale": "tracking"}
    _ok(api.act(ids["d3"], "rule", "agent", "a1", ruling), "ruled")
    appeal = {"reason": "it arrived", "evidence": [PHOTO]}
    _ok(api.act(ids["d3"], "appeal", "seller", "s2", appeal), "under_appeal")
    upheld = {"decision": "full_refund", "rationale": "still not there"}
    _ok(api.act(ids["d3"], "rule", "agent", "a2", upheld), "refund_pending")
    order = api.call("GET", f"/v1/disputes/{ids['d1']}", "agent", "a1").json()["order_id"]
    charged = api.call("POST", f"/v1/orders/{order}/chargebacks", "service", "payments", {
        "reference": "cb-1", "amount": MONEY, "reason": "fraud",
        "opened_at": datetime.now(UTC).isoformat()})  # fmt: skip
    assert charged.status_code == 201, charged.text
    seeded.catch_up()

    appeals = seeded.ok("/v1/stats/appeals")
    assert (appeals["rulings"], appeals["filed"], appeals["by_seller"]) == (1, 1, 1)
    assert (appeals["decided"], appeals["overturned"], appeals["overturn_rate"]) == (1, 0, 0.0)
    chargebacks = seeded.ok("/v1/stats/chargebacks", role="auditor", principal="audit")
    assert (chargebacks["chargebacks"], chargebacks["double_recoveries"]) == (1, 1)
    assert chargebacks["amount_at_risk"] == [MONEY]
    [double] = chargebacks["data"]
    assert (double["dispute_id"], double["seller_id"], double["amount_at_risk"]) == (
        ids["d1"], "s1", MONEY,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/disputes", {"cursor": "not-a-cursor"}, "cursor"),
        ("/v1/disputes", {"limit": "0"}, "limit"),
        ("/v1/disputes", {"limit": "201"}, "limit"),
        ("/v1/disputes", {"limit": "many"}, "limit"),
        ("/v1/disputes", {"opened_after": "yesterday"}, "opened_after"),
        ("/v1/disputes", {"opened_before": "2026-01-01T00:00:00"}, "opened_before"),
        ("/v1/disputes", {"deadline_before": "soon"}, "deadline_before"),
        ("/v1/disputes", {"state": "lost"}, "state"),
        ("/v1/stats/daily", {"from": "last week"}, "from"),
        ("/v1/stats/daily", {"from": "2026-02-02", "to": "2026-02-01"}, "from"),
    ],
)
def test_bad_parameters_answer_422_naming_the_parameter(
    bare: Seeded, path: str, params: dict[str, str], field: str
) -> None:
    response = bare.get(path, **params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in response.json()["errors"]] == [field]


@pytest.mark.parametrize("role", ["buyer", "seller"])
def test_parties_are_refused_the_stats(bare: Seeded, role: str) -> None:
    for path in STATS:
        response = bare.get(f"/v1/stats/{path}", role, "b1" if role == "buyer" else "s1")
        assert response.status_code == 403, (path, response.text)
        assert response.json()["type"].endswith("/role_not_permitted")
