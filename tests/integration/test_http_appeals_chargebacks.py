"""The three later flows over HTTP, on SQLite and PostgreSQL: cancelling before shipment,
appeals (four eyes), chargebacks on the order; every refusal a problem."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.contract import PROBLEM_BASE, PROBLEM_MEDIA_TYPE

from .http_support import PHOTO, Api, order_body, running_service

TRACKING = {**PHOTO, "kind": "tracking", "uri": "https://carrier.example/track/1"}


@pytest.fixture
def api(backend: dict[str, str]) -> Iterator[Api]:
    with running_service(backend, sandbox=True) as service:
        yield service


def ok(response: httpx.Response, state: str | None = None) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    if state is not None:
        assert body["state"] == state, body
    return body


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM_BASE + code, body
    return body


def under_review(api: Api, **body: Any) -> dict[str, Any]:
    dispute = api.open_dispute(**body)
    ok(api.act(dispute, "reject", "seller", "s1", {"reason": "fine", "evidence": [PHOTO]}))
    return ok(api.act(dispute, "escalate", "buyer", "b1", {"reason": "stuck"}), "under_review")


def chargeback(api: Api, order: str, reference: str = "cb_1", **body: Any) -> httpx.Response:
    return api.call("POST", f"/v1/orders/{order}/chargebacks", "service", "payments", {
        "reference": reference, "amount": {"amount": 5000, "currency": "USD"},
        "reason": "fraudulent", "opened_at": datetime.now(UTC).isoformat(), **body})  # fmt: skip


# Cancelling before shipment ------------------------------------------------------------


def test_an_unshipped_order_is_cancelled_and_refunded_in_full(api: Api) -> None:
    dispute = api.open_dispute(reason="not_shipped", evidence=[])
    assert dispute["reason"] == "not_shipped"
    refused = api.act(dispute, "reject", "seller", "s1", {"reason": "sent", "evidence": [PHOTO]})
    body = problem(refused, 422, "invalid_input")
    assert body["errors"][0]["field"] == "evidence"
    assert body["errors"][0]["rule"] == "tracking_required"
    ok(api.act(dispute, "accept", "seller", "s1"), "refund_pending")


def test_a_shipped_order_cannot_be_cancelled(api: Api) -> None:
    order = "o-shipped"
    shipped = {**order_body(), "shipped_at": datetime.now(UTC).isoformat()}
    assert api.call("PUT", f"/v1/orders/{order}", "service", "orders", shipped).status_code == 201
    response = api.call("POST", "/v1/disputes", "buyer", "b1", {
        "order_id": order, "reason": "not_shipped", "requested_resolution": "refund_only",
        "amount": {"amount": 5000, "currency": "USD"}, "description": "cancel",
        "evidence": []})  # fmt: skip
    body = problem(response, 422, "order_shipped")
    assert body["errors"][0] == {"field": "reason", "rule": "order_not_shipped",
                                 "message": body["detail"]}  # fmt: skip


# Appeals -----------------------------------------------------------------------------


def test_an_appeal_decided_by_another_agent_overturns_the_ruling(api: Api) -> None:
    dispute = under_review(api)
    ruled = ok(api.act(dispute, "rule", "agent", "a1",
                       {"decision": "full_refund", "rationale": "photos"}), "ruled")  # fmt: skip
    assert ruled["ruling"]["by"] == "a1"
    assert ruled["ruling"]["final_at"] == ruled["deadlines"][0]["due_at"]
    assert ruled["appeal"] is None
    buyer = api.call("GET", f"/v1/disputes/{dispute['id']}", "buyer", "b1").json()
    assert "appeal" not in buyer["allowed_actions"]  # the ruling went for the buyer
    more = {"reason": "more", "evidence": [PHOTO]}
    refused = problem(api.act(dispute, "appeal", "buyer", "b1", more), 409, "action_not_allowed")
    assert refused["allowed_actions"] == buyer["allowed_actions"]
    no_evidence = api.act(dispute, "appeal", "seller", "s1", {"reason": "no", "evidence": []})
    assert problem(no_evidence, 422, "invalid_input")["errors"][0]["field"] == "evidence"

    intact = {"reason": "item was intact", "evidence": [PHOTO]}
    appealed = ok(api.act(dispute, "appeal", "seller", "s1", intact), "under_appeal")
    assert appealed["appeal"]["by"] == "seller"
    assert appealed["appeal"]["first_ruling"]["decision"] == "full_refund"
    assert appealed["ruling"]["final_at"] is None
    assert appealed["deadlines"][0]["kind"] == "appeal_ruling"
    first_agent = api.call("GET", f"/v1/disputes/{dispute['id']}", "agent", "a1").json()
    assert "rule" not in first_agent["allowed_actions"]
    assert first_agent["recommendation"]["basis"].startswith("appeal by the seller")
    four_eyes = problem(api.act(dispute, "rule", "agent", "a1",
                                {"decision": "seller_favoured", "rationale": "x"}), 409,
                        "action_not_allowed")  # fmt: skip
    assert "other than the one who ruled" in four_eyes["detail"]

    overturn = {"decision": "seller_favoured", "rationale": "intact"}
    final = ok(api.act(dispute, "rule", "agent", "a2", overturn), "closed")
    assert final["outcome"] == "seller_favoured"
    assert final["appeal"]["overturned"] is True and final["appeal"]["decided_by"] == "a2"
    assert final["ruling"]["by"] == "a2" and final["ruling"]["final_at"] is not None


def test_the_ruling_takes_effect_when_the_appeal_window_ends(api: Api) -> None:
    dispute = under_review(api)
    ok(api.act(dispute, "rule", "agent", "a1",
               {"decision": "partial_refund", "amount": {"amount": 2000, "currency": "USD"},
                "rationale": "half"}), "ruled")  # fmt: skip
    moved = api.call("POST", "/v1/sandbox/clock", "agent", "a1", {"advance": "P3DT1H"})
    assert moved.status_code == 200, moved.text
    after = api.call("GET", f"/v1/disputes/{dispute['id']}", "buyer", "b1").json()
    assert after["state"] == "refund_pending"
    assert after["refund"]["amount"] == {"amount": 2000, "currency": "USD"}
    assert after["resolution"]["via"] == "appeal-window-timeout"
    events = api.call("GET", f"/v1/disputes/{dispute['id']}/events", "auditor", "x").json()
    assert [e["type"] for e in events["events"]][-2:] == ["RulingIssued", "RulingTookEffect"]


# Chargebacks -------------------------------------------------------------------------


def test_a_chargeback_closes_the_open_dispute_and_no_refund_is_paid_after(api: Api) -> None:
    dispute = api.open_dispute()
    ok(api.act(dispute, "accept", "seller", "s1"), "refund_pending")
    response = chargeback(api, dispute["order_id"])
    assert response.status_code == 201, response.text
    assert response.headers["Location"] == f"/v1/orders/{dispute['order_id']}"
    order = response.json()
    [recorded] = order["chargebacks"]
    assert (recorded["reference"], recorded["dispute_id"]) == ("cb_1", dispute["id"])
    assert (recorded["double_recovery"], recorded["amount_at_risk"]) == (False, None)
    closed = api.call("GET", f"/v1/disputes/{dispute['id']}", "seller", "s1").json()
    assert (closed["state"], closed["outcome"]) == ("closed", "chargeback")
    assert closed["chargeback"]["reference"] == "cb_1"
    late = api.act(dispute, "refund-paid", "service", "payments",
                   {"reference": "re_1", "paid_at": datetime.now(UTC).isoformat()})  # fmt: skip
    assert "chargeback" in problem(late, 409, "action_not_allowed")["detail"]
    problem(chargeback(api, dispute["order_id"]), 409, "chargeback_exists")


def test_a_chargeback_after_a_paid_refund_is_a_double_recovery(api: Api) -> None:
    dispute = api.open_dispute()
    ok(api.act(dispute, "accept", "seller", "s1"))
    paid = {"reference": "re_1", "paid_at": datetime.now(UTC).isoformat()}
    ok(api.act(dispute, "refund-paid", "service", "payments", paid), "closed")
    order = ok(chargeback(api, dispute["order_id"], amount={"amount": 3000, "currency": "USD"}))
    [recorded] = order["chargebacks"]
    assert recorded["double_recovery"] is True
    assert recorded["amount_at_risk"] == {"amount": 3000, "currency": "USD"}
    after = api.call("GET", f"/v1/disputes/{dispute['id']}", "buyer", "b1").json()
    assert after["outcome"] == "refunded_full"  # the closed dispute stays as it was


def test_an_order_with_a_chargeback_can_no_longer_be_disputed(api: Api) -> None:
    order = api.register_order()
    ok(chargeback(api, order))
    response = api.call("POST", "/v1/disputes", "buyer", "b1", {
        "order_id": order, "reason": "damaged", "requested_resolution": "refund_only",
        "amount": {"amount": 5000, "currency": "USD"}, "description": "x",
        "evidence": [PHOTO]})  # fmt: skip
    assert "cb_1" in problem(response, 409, "order_charged_back")["detail"]


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({"amount": {"amount": 5001, "currency": "USD"}}, "amount.amount",
         "not_above_order_amount"),
        ({"amount": {"amount": 10, "currency": "EUR"}}, "amount.currency", "order_currency"),
        ({"opened_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()}, "opened_at",
         "not_in_future"),
        ({"opened_at": "2026-01-01T00:00:00"}, "opened_at", "timezone"),
        ({"reference": "x" * 201}, "reference", "max_length"),
        ({"surprise": 1}, "surprise", "unknown_field"),
    ],
)  # fmt: skip
def test_bad_chargeback_reports_are_refused_naming_field_and_rule(
    api: Api, body: dict[str, Any], field: str, rule: str
) -> None:
    order = api.register_order()
    refused = problem(chargeback(api, order, **body), 422, "invalid_input")
    assert (field, rule) in {(e["field"], e["rule"]) for e in refused["errors"]}
    assert api.call("GET", f"/v1/orders/{order}", "service", "x").json()["chargebacks"] == []


def test_only_a_service_reports_chargebacks(api: Api) -> None:
    order = api.register_order()
    response = api.call("POST", f"/v1/orders/{order}/chargebacks", "buyer", "b1", {
        "reference": "cb", "amount": {"amount": 1, "currency": "USD"}, "reason": "x",
        "opened_at": datetime.now(UTC).isoformat()})  # fmt: skip
    problem(response, 403, "role_not_permitted")


def test_the_state_machine_publishes_the_new_states_and_the_chargeback(api: Api) -> None:
    machine = api.call("GET", "/v1/state-machine", "agent", "a1").json()
    assert {"ruled", "under_appeal"} <= set(machine["states"])
    assert "appeal" in machine["actions"] and "chargeback" not in machine["actions"]
    assert machine["reported_on_order"] == ["chargeback"]
    assert "appeal_window_timeout" in machine["timeouts"]
    for name in ("ruled", "under_appeal", "appeal_window_timeout", "chargeback"):
        assert name in machine["mermaid"]
