"""Every action of the table over HTTP, on its happy path, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from .http_support import PHOTO, Api, order_body, running_service


@pytest.fixture
def api(backend: dict[str, str]) -> Iterator[Api]:
    with running_service(backend) as service:
        yield service


@pytest.fixture
def sandbox_api(backend: dict[str, str]) -> Iterator[Api]:
    with running_service(backend, sandbox=True) as service:
        yield service


def ok(response, state: str | None = None) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.text
    body = response.json()
    assert response.headers["ETag"] == f'"{body["version"]}"'
    if state is not None:
        assert body["state"] == state
    return body


def test_opening_answers_201_with_location_etag_and_the_dispute(api: Api) -> None:
    order = api.register_order(buyer="b1", seller="s1", amount=5000)
    response = api.call("POST", "/v1/disputes", "buyer", "b1", {
        "order_id": order, "reason": "damaged", "requested_resolution": "refund_only",
        "amount": {"amount": 4000, "currency": "USD"}, "description": "broken",
        "evidence": [PHOTO]})  # fmt: skip

    assert response.status_code == 201, response.text
    dispute = response.json()
    assert response.headers["Location"] == f"/v1/disputes/{dispute['id']}"
    assert response.headers["ETag"] == '"1"'
    assert dispute["order_id"] == order
    assert (dispute["buyer_id"], dispute["seller_id"]) == ("b1", "s1")
    assert dispute["state"] == "awaiting_seller"
    assert dispute["amount"] == {"amount": 4000, "currency": "USD"}
    assert dispute["order_amount"] == {"amount": 5000, "currency": "USD"}
    assert dispute["deadlines"][0]["kind"] == "seller_response"
    assert dispute["deadlines"][0]["due_from"] == "seller"
    assert dispute["deadlines"][0]["due_at"].endswith("Z")
    assert dispute["offer"] is None and dispute["outcome"] is None and dispute["refund"] is None
    assert dispute["allowed_actions"] == ["withdraw", "evidence", "messages"]
    assert "recommendation" not in dispute or dispute["recommendation"] is None
    seller_view = api.call("GET", f"/v1/disputes/{dispute['id']}", "seller", "s1").json()
    assert {"accept", "reject", "offer"} <= set(seller_view["allowed_actions"])
    order_view = api.call("GET", f"/v1/orders/{order}", "buyer", "b1").json()
    assert order_view["dispute_id"] == dispute["id"]
    assert order_view["protection_ends_at"].endswith("Z")


def test_seller_accepts_and_payments_pay_the_refund(api: Api) -> None:
    dispute = api.open_dispute()
    accepted = ok(api.act(dispute, "accept", "seller", "s1"), "refund_pending")
    assert accepted["refund"]["amount"] == {"amount": 5000, "currency": "USD"}
    assert accepted["refund"]["paid_at"] is None
    paid_at = datetime.now(UTC).isoformat()
    closed = ok(api.act(dispute, "refund-paid", "service", "payments",
                        {"reference": "re_1", "paid_at": paid_at}), "closed")  # fmt: skip
    assert closed["outcome"] == "refunded_full"
    assert closed["refund"]["reference"] == "re_1"
    assert closed["closed_at"] is not None
    assert closed["allowed_actions"] == []


def test_an_offer_of_replacement_accepted_by_the_buyer_closes_the_case(api: Api) -> None:
    dispute = api.open_dispute()
    offered = ok(api.act(dispute, "offer", "seller", "s1",
                         {"type": "replacement", "message": "new one"}), "negotiating")  # fmt: skip
    assert offered["offer"]["type"] == "replacement" and offered["offer"]["amount"] is None
    assert offered["turn"] == "buyer"
    closed = ok(api.act(dispute, "accept-offer", "buyer", "b1"), "closed")
    assert closed["outcome"] == "replacement"


def test_the_buyer_withdraws(api: Api) -> None:
    dispute = api.open_dispute()
    closed = ok(api.act(dispute, "withdraw", "buyer", "b1", {"reason": "sorted"}), "closed")
    assert closed["outcome"] == "withdrawn"


def test_a_case_through_negotiation_review_return_contest_and_refund(sandbox_api: Api) -> None:
    api = sandbox_api
    dispute = api.open_dispute(requested_resolution="refund_only")
    cash = {"amount": 2500, "currency": "USD"}
    ok(
        api.act(
            dispute, "reject", "seller", "s1", {"reason": "fine when sent", "evidence": [PHOTO]}
        ),
        "negotiating",
    )
    revised = ok(
        api.act(
            dispute,
            "revise",
            "buyer",
            "b1",
            {"requested_resolution": "return_and_refund", "amount": cash, "message": "half?"},
        )
    )
    assert revised["turn"] == "seller" and revised["amount"] == cash
    offered = ok(
        api.act(
            dispute,
            "offer",
            "seller",
            "s1",
            {"type": "partial_refund", "amount": {"amount": 1000, "currency": "USD"}},
        )
    )
    assert offered["offer"]["amount"] == {"amount": 1000, "currency": "USD"}
    ok(api.act(dispute, "escalate", "buyer", "b1", {"reason": "too little"}), "under_review")
    asked = ok(api.act(dispute, "request-info", "agent", "a1",
                       {"from": "seller", "question": "packing photos?"}))  # fmt: skip
    assert asked["info_requests"][0]["from"] == "seller"
    assert asked["info_requests"][0]["status"] == "open"
    answered = ok(api.act(dispute, "evidence", "seller", "s1", {"evidence": [PHOTO]}))
    assert answered["info_requests"][0]["status"] == "answered"
    messaged = ok(api.act(dispute, "messages", "buyer", "b1", {"body": "still broken"}))
    assert messaged["messages"][-1]["body"] == "still broken"
    agent_view = api.call("GET", f"/v1/disputes/{dispute['id']}", "agent", "a1").json()
    assert agent_view["recommendation"]["decision"] in {
        "full_refund", "partial_refund", "return_and_refund", "none"}  # fmt: skip
    ruling_due = next(d for d in agent_view["deadlines"] if d["kind"] == "ruling")["due_at"]
    later = (datetime.fromisoformat(ruling_due) + timedelta(days=2)).isoformat()
    extended = ok(api.act(dispute, "extend-deadline", "agent", "a1",
                          {"deadline": "ruling", "until": later, "reason": "complex"}))  # fmt: skip
    assert next(d for d in extended["deadlines"] if d["kind"] == "ruling")["due_at"] != ruling_due
    ruled = ok(api.act(dispute, "rule", "agent", "a1", {
        "decision": "return_and_refund", "return_shipping_paid_by": "seller",
        "rationale": "photos show damage"}), "ruled")  # fmt: skip
    assert ruled["ruling"]["decision"] == "return_and_refund"
    assert ruled["ruling"]["by"] == "a1" and ruled["ruling"]["final_at"] is not None
    assert [d["kind"] for d in ruled["deadlines"]] == ["appeal_window"]
    # the appeal window (3 days) ends without an appeal: the ruling takes effect
    moved = api.call("POST", "/v1/sandbox/clock", "agent", "a1", {"advance": "P3DT1H"})
    assert moved.status_code == 200, moved.text
    ruled = api.call("GET", f"/v1/disputes/{dispute['id']}", "buyer", "b1").json()
    assert ruled["state"] == "awaiting_return"
    assert ruled["return"]["shipping_paid_by"] == "seller"
    shipped = ok(
        api.act(dispute, "ship-return", "buyer", "b1", {"carrier": "UPS", "tracking_number": "1Z"}),
        "return_in_transit",
    )
    assert shipped["return"]["tracking_number"] == "1Z"
    # the service's clock, not ours: the sandbox moved it ahead
    delivered = ok(api.act(dispute, "return-delivered", "service", "logistics",
                           {"delivered_at": shipped["return"]["shipped_at"]}))  # fmt: skip
    assert delivered["return"]["delivered_at"] is not None
    ok(api.act(dispute, "contest-return", "seller", "s1",
               {"reason": "box was empty", "evidence": [PHOTO]}), "under_review")  # fmt: skip
    ok(
        api.act(
            dispute,
            "rule",
            "agent",
            "a1",
            {
                "decision": "partial_refund",
                "amount": {"amount": 3000, "currency": "USD"},
                "rationale": "split",
            },
        ),
        "refund_pending",  # one appeal window per dispute: this ruling is final at once
    )
    failed = ok(api.act(dispute, "refund-failed", "service", "payments", {"reason": "card closed"}))
    assert failed["refund"]["failures"][0]["reason"] == "card closed"
    closed = ok(
        api.act(
            dispute,
            "refund-paid",
            "service",
            "payments",
            {"reference": "re_2", "paid_at": datetime.now(UTC).isoformat()},
        ),
        "closed",
    )
    assert closed["outcome"] == "refunded_partial"
    assert closed["refund"]["amount"] == {"amount": 3000, "currency": "USD"}


def test_a_confirmed_return_starts_the_refund(api: Api) -> None:
    dispute = api.open_dispute(requested_resolution="return_and_refund")
    ok(api.act(dispute, "accept", "seller", "s1"), "awaiting_return")
    ok(api.act(dispute, "ship-return", "buyer", "b1", {"carrier": "DHL", "tracking_number": "9"}))
    confirmed = ok(api.act(dispute, "confirm-return", "seller", "s1"), "refund_pending")
    assert confirmed["refund"]["expected_by"].endswith("Z")


def test_orders_are_registered_then_updated_and_extended(api: Api) -> None:
    registration = order_body()
    first = api.call("PUT", "/v1/orders/o-77", "service", "orders", registration)
    assert first.status_code == 201 and first.headers["Location"] == "/v1/orders/o-77"
    shipped = {**registration, "shipped_at": datetime.now(UTC).isoformat(),
               "tracking": {"carrier": "UPS", "number": "1Z9"}}  # fmt: skip
    second = api.call("PUT", "/v1/orders/o-77", "service", "orders", shipped)
    assert second.status_code == 200, second.text
    assert second.json()["tracking"] == {"carrier": "UPS", "number": "1Z9"}
    before = second.json()["protection_ends_at"]
    extended = api.call("POST", "/v1/orders/o-77/protection-extensions", "seller", "s1",
                        {"days": 5, "reason": "parcel delayed"})  # fmt: skip
    assert extended.status_code == 200, extended.text
    assert extended.json()["extensions"][0]["days"] == 5
    assert extended.json()["protection_ends_at"] > before
