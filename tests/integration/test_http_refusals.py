"""Refusals as RFC 9457 problems: 401, 403, 404, 409, 412, 422, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .http_support import TOKEN, Api, dispute_body, running_service

PROBLEMS = "https://disputes.internal/problems/"


@pytest.fixture
def api(backend: dict[str, str]) -> Iterator[Api]:
    with running_service(backend) as service:
        yield service


def problem(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == PROBLEMS + code
    assert body["status"] == status and body["title"] and body["detail"]
    assert body["instance"]
    return body


def field_errors(body: dict) -> set[tuple[str, str]]:
    return {(e["field"], e["rule"]) for e in body["errors"]}


@pytest.mark.parametrize(
    "hdrs",
    [
        {},
        {"X-Internal-Token": "wrong-token-0123456789"},
        {"X-Internal-Token": TOKEN, "X-Principal-Role": "system", "X-Principal-Id": "w"},
        {"X-Internal-Token": TOKEN, "X-Principal-Role": "buyer"},
    ],
    ids=["no-token", "bad-token", "system-role", "no-principal"],
)
def test_a_caller_the_gateway_did_not_vouch_for_gets_401(api: Api, hdrs: dict) -> None:
    response = api.client.get("/v1/state-machine", headers=hdrs)
    problem(response, 401, "unauthenticated")


def test_a_role_that_may_never_take_the_action_gets_403(api: Api) -> None:
    dispute = api.open_dispute()
    problem(api.act(dispute, "accept", "buyer", "b1"), 403, "role_not_permitted")
    problem(
        api.act(dispute, "rule", "auditor", "x", {"decision": "seller_favoured", "rationale": "r"}),
        403,
        "role_not_permitted",
    )
    problem(api.call("GET", "/v1/events", "buyer", "b1"), 403, "role_not_permitted")


def test_a_stranger_gets_404_for_orders_and_disputes_that_are_not_theirs(api: Api) -> None:
    dispute = api.open_dispute(buyer="b1")
    for role, who in (("buyer", "b2"), ("seller", "s2")):
        problem(api.call("GET", f"/v1/disputes/{dispute['id']}", role, who), 404,
                "dispute_not_found")  # fmt: skip
        problem(api.call("GET", f"/v1/orders/{dispute['order_id']}", role, who), 404,
                "order_not_found")  # fmt: skip
        problem(api.call("GET", f"/v1/disputes/{dispute['id']}/events", role, who), 404,
                "dispute_not_found")  # fmt: skip
    problem(api.act(dispute, "offer", "seller", "s2", {"type": "replacement"}), 404,
            "dispute_not_found")  # fmt: skip
    order = api.register_order(buyer="b1")
    problem(api.call("POST", "/v1/disputes", "buyer", "b2", dispute_body(order)), 404,
            "order_not_found")  # fmt: skip
    problem(api.call("GET", "/v1/disputes/not-a-uuid", "agent", "a1"), 404, "dispute_not_found")


def test_an_action_the_state_does_not_allow_gets_409_with_the_allowed_actions(api: Api) -> None:
    dispute = api.open_dispute()
    body = problem(api.act(dispute, "accept-offer", "buyer", "b1"), 409, "action_not_allowed")
    assert body["allowed_actions"] == ["withdraw", "evidence", "messages"]
    api.act(dispute, "withdraw", "buyer", "b1", {"reason": "done"})
    closed = problem(api.act(dispute, "messages", "buyer", "b1", {"body": "hi"}), 409,
                     "action_not_allowed")  # fmt: skip
    assert closed["allowed_actions"] == []


def test_a_second_dispute_for_an_order_gets_409(api: Api) -> None:
    dispute = api.open_dispute()
    again = api.call("POST", "/v1/disputes", "buyer", "b1", dispute_body(dispute["order_id"]))
    problem(again, 409, "dispute_exists")


def test_a_stale_if_match_gets_412_and_records_nothing(api: Api) -> None:
    dispute = api.open_dispute()
    api.act(dispute, "messages", "buyer", "b1", {"body": "one"})
    stale = api.act(dispute, "messages", "seller", "s1", {"body": "two"}, If_Match='"1"')
    problem(stale, 412, "version_mismatch")
    now = api.call("GET", f"/v1/disputes/{dispute['id']}", "seller", "s1")
    assert now.json()["version"] == 2 and len(now.json()["messages"]) == 1
    fresh = api.act(dispute, "messages", "seller", "s1", {"body": "two"}, If_Match='"2"')
    assert fresh.status_code == 200 and fresh.headers["ETag"] == '"3"'


def test_a_rule_broken_by_a_field_gets_422_naming_the_field_and_rule(api: Api) -> None:
    order = api.register_order(amount=5000)
    too_much = dispute_body(order, amount={"amount": 9999, "currency": "USD"})
    body = problem(api.call("POST", "/v1/disputes", "buyer", "b1", too_much), 422,
                   "invalid_input")  # fmt: skip
    assert field_errors(body) == {("amount.amount", "not_above_order_amount")}
    no_photo = dispute_body(order, evidence=[])
    body = problem(api.call("POST", "/v1/disputes", "buyer", "b1", no_photo), 422, "invalid_input")
    assert field_errors(body) == {("evidence", "photo_or_video_required")}
    mind = dispute_body(order, reason="changed_my_mind")
    body = problem(api.call("POST", "/v1/disputes", "buyer", "b1", mind), 422,
                   "reason_not_covered")  # fmt: skip
    assert field_errors(body) == {("reason", "not_covered")}
    currency = dispute_body(order, amount={"amount": 100, "currency": "EUR"})
    body = problem(api.call("POST", "/v1/disputes", "buyer", "b1", currency), 422,
                   "invalid_input")  # fmt: skip
    assert field_errors(body) == {("amount.currency", "order_currency")}


def test_a_malformed_body_gets_422_listing_every_bad_field(api: Api) -> None:
    bad = {"order_id": 7, "reason": "damaged", "requested_resolution": "money",
           "amount": {"amount": "12.50", "currency": "USD"},
           "evidence": [{"kind": "selfie", "uri": "u", "sha256": "x"}]}  # fmt: skip
    body = problem(api.call("POST", "/v1/disputes", "buyer", "b1", bad), 422, "invalid_input")
    assert field_errors(body) == {
        ("order_id", "string"),
        ("requested_resolution", "one_of"),
        ("amount.amount", "integer"),
        ("description", "required"),
        ("evidence[0].kind", "one_of"),
        ("evidence[0].uri", "pattern"),
        ("evidence[0].sha256", "pattern"),
    }


def test_unknown_body_fields_are_refused_so_nobody_sets_state_through_a_body(api: Api) -> None:
    dispute = api.open_dispute()
    sneaky = api.act(dispute, "messages", "buyer", "b1", {"body": "hi", "state": "closed"})
    body = problem(sneaky, 422, "invalid_input")
    assert field_errors(body) == {("state", "unknown_field")}
    empty_action = api.act(dispute, "accept", "seller", "s1", {"outcome": "refunded_full"})
    assert field_errors(problem(empty_action, 422, "invalid_input")) == {
        ("outcome", "unknown_field")
    }
    assert api.call("GET", f"/v1/disputes/{dispute['id']}", "agent", "a").json()["version"] == 1


def test_an_unknown_action_or_path_gets_a_404_problem(api: Api) -> None:
    dispute = api.open_dispute()
    problem(api.act(dispute, "seller-response-timeout", "agent", "a1"), 404, "unknown_action")
    problem(api.act(dispute, "refund", "agent", "a1", {}), 404, "unknown_action")
    problem(api.call("GET", "/v1/nothing-here", "agent", "a1"), 404, "not_found")


def test_order_facts_never_change_and_extensions_need_the_seller(api: Api) -> None:
    from .http_support import order_body

    body = order_body()
    api.call("PUT", "/v1/orders/o-9", "service", "orders", body)
    changed = api.call("PUT", "/v1/orders/o-9", "service", "orders", {**body, "seller_id": "s9"})
    problem(changed, 409, "order_facts_conflict")
    problem(api.call("PUT", "/v1/orders/o-9", "buyer", "b1", body), 403, "role_not_permitted")
    problem(api.call("POST", "/v1/orders/o-9/protection-extensions", "buyer", "b1",
                     {"days": 3, "reason": "late"}), 403, "role_not_permitted")  # fmt: skip
    api.open_dispute("o-9")
    refused = api.call("POST", "/v1/orders/o-9/protection-extensions", "seller", "s1",
                       {"days": 3, "reason": "late"})  # fmt: skip
    problem(refused, 409, "extension_refused")


def test_the_sandbox_clock_does_not_exist_outside_the_sandbox(api: Api) -> None:
    problem(api.call("POST", "/v1/sandbox/clock", "agent", "a1", {"advance": "P5D"}), 404,
            "not_found")  # fmt: skip
    problem(api.call("GET", "/v1/sandbox/clock", "agent", "a1"), 404, "not_found")


def test_a_body_that_is_not_json_names_the_body_and_where_it_broke(api: Api) -> None:
    sent = {"X-Internal-Token": TOKEN, "X-Principal-Role": "service", "X-Principal-Id": "o"}
    for broken in (b"not json", b'{"buyer_id":'):
        response = api.client.put("/v1/orders/o-1", content=broken,
                                  headers={**sent, "Content-Type": "application/json"})  # fmt: skip
        body = problem(response, 422, "invalid_input")
        [error] = body["errors"]
        assert (error["field"], error["rule"]) == ("body", "json")
        assert "not valid JSON at character" in error["message"]


def test_a_body_that_is_not_json_by_its_media_type_is_415(api: Api) -> None:
    sent = {"X-Internal-Token": TOKEN, "X-Principal-Role": "service", "X-Principal-Id": "o"}
    response = api.client.put("/v1/orders/o-1", content=b'{"buyer_id": "b"}',
                              headers={**sent, "Content-Type": "text/plain"})  # fmt: skip
    body = problem(response, 415, "unsupported_media_type")
    assert "application/json" in body["detail"]
    assert api.client.get("/v1/orders/o-1", headers=sent).status_code == 404  # nothing stored
