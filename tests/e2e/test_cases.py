"""Whole cases through the public API only, against the real processes on PostgreSQL:
the gateway, the dispute service and the deadline worker (sandbox clock on)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.contract import PROBLEM_BASE, PROBLEM_MEDIA_TYPE

from .stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.slow]

PHOTO = {
    "kind": "photo",
    "uri": "https://files.example/parcel.jpg",
    "sha256": hashlib.sha256(b"parcel").hexdigest(),
}


def usd(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "USD"}


class Party:
    """One principal calling the public API with its own token."""

    def __init__(self, client: httpx.Client, stack: Stack, role: str, sub: str) -> None:
        self.client, self.role, self.id = client, role, sub
        self.headers = {"Authorization": f"Bearer {stack.token(role, sub)}"}

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get(path, params=params, headers=self.headers)

    def send(self, method: str, path: str, body: Any = None, **headers: str) -> httpx.Response:
        return self.client.request(method, path, json=body, headers={**self.headers, **headers})

    def act(self, dispute_id: str, action: str, body: Any = None, **headers: str) -> Any:
        response = self.send("POST", f"/v1/disputes/{dispute_id}/{action}", body, **headers)
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == f'"{response.json()["version"]}"'
        return response.json()


class Case:
    """The cast of one case: its own buyer, seller and order, and the shared staff."""

    def __init__(self, client: httpx.Client, stack: Stack) -> None:
        tag = uuid.uuid4().hex[:8]
        self.order_id = f"ord-{tag}"
        self.buyer = Party(client, stack, "buyer", f"buyer-{tag}")
        self.seller = Party(client, stack, "seller", f"seller-{tag}")
        self.agent = Party(client, stack, "agent", "agent-1")
        self.logistics = Party(client, stack, "service", "logistics")
        self.payments = Party(client, stack, "service", "payments")
        self.auditor = Party(client, stack, "auditor", "auditor-1")
        self.stranger = Party(client, stack, "buyer", f"stranger-{tag}")

    def register_order(self, placed_days_ago: int = 10, **facts: Any) -> dict[str, Any]:
        placed = datetime.now(UTC) - timedelta(days=placed_days_ago)
        body = {
            "buyer_id": self.buyer.id,
            "seller_id": self.seller.id,
            "amount": usd(5000),
            "payment_method": "card",
            "placed_at": placed.isoformat(),
            **facts,
        }
        response = self.logistics.send("PUT", f"/v1/orders/{self.order_id}", body)
        assert response.status_code == 201, response.text
        assert response.headers["location"] == f"/v1/orders/{self.order_id}"
        order: dict[str, Any] = response.json()
        return order

    def open(self, reason: str, resolution: str = "refund_only", **extra: Any) -> httpx.Response:
        body = {
            "order_id": self.order_id,
            "reason": reason,
            "requested_resolution": resolution,
            "amount": usd(5000),
            "description": f"{reason}: see the evidence",
            "evidence": [PHOTO],
            **extra,
        }
        return self.buyer.send("POST", "/v1/disputes", body, **{"X-Request-ID": "open-" + reason})

    def opened(self, reason: str, resolution: str = "refund_only") -> dict[str, Any]:
        self.register_order()
        response = self.open(reason, resolution)
        assert response.status_code == 201, response.text
        dispute: dict[str, Any] = response.json()
        assert response.headers["location"] == f"/v1/disputes/{dispute['id']}"
        assert dispute["state"] == "awaiting_seller"
        return dispute

    def pay_refund(self, dispute_id: str, reference: str) -> dict[str, Any]:
        # The service's clock, not ours: the sandbox may have moved it ahead.
        pending = self.payments.get(f"/v1/disputes/{dispute_id}").json()
        paid_at = pending["refund"]["started_at"]
        closed: dict[str, Any] = self.payments.act(
            dispute_id, "refund-paid", {"reference": reference, "paid_at": paid_at}
        )
        return closed


@pytest.fixture
def client(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=60) as http:
        yield http


@pytest.fixture
def case(client: httpx.Client, stack: Stack) -> Case:
    return Case(client, stack)


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM_BASE + code, body
    return body


def test_a_parcel_that_never_arrives_is_refunded_when_the_seller_stays_silent(
    case: Case,
) -> None:
    dispute = case.opened("not_received")
    moved = case.agent.send("POST", "/v1/sandbox/clock", {"advance": "P6D"})
    assert moved.status_code == 200, moved.text
    lapsed = case.buyer.get(f"/v1/disputes/{dispute['id']}").json()
    assert lapsed["state"] == "refund_pending"
    assert lapsed["refund"]["amount"] == usd(5000)
    assert "refund-paid" not in lapsed["allowed_actions"]  # the buyer's view
    closed = case.pay_refund(dispute["id"], "re_never_arrived")
    assert (closed["state"], closed["outcome"]) == ("closed", "refunded_full")
    events = case.auditor.get(f"/v1/disputes/{dispute['id']}/events").json()["events"]
    assert [e["actor"]["role"] for e in events] == ["buyer", "system", "service"]
    assert events[0]["request_id"] == "open-not_received"


def test_a_wrong_item_is_settled_by_a_partial_refund_offer(case: Case) -> None:
    dispute = case.opened("wrong_item")
    offered = case.seller.act(
        dispute["id"],
        "offer",
        {"type": "partial_refund", "amount": usd(2000), "message": "keep it, 20 back"},
        **{"X-Request-ID": "offer-1"},
    )
    assert offered["state"] == "negotiating"
    assert offered["offer"]["amount"] == usd(2000)
    accepted = case.buyer.act(
        dispute["id"], "accept-offer", **{"If-Match": f'"{offered["version"]}"'}
    )
    assert accepted["state"] == "refund_pending"
    closed = case.pay_refund(dispute["id"], "re_partial")
    assert (closed["outcome"], closed["refund"]["amount"]) == ("refunded_partial", usd(2000))
    events = case.buyer.get(f"/v1/disputes/{dispute['id']}/events").json()["events"]
    assert events[1]["request_id"] == "offer-1"
    assert events[1]["actor"] == {"role": "seller", "id": case.seller.id}


def test_a_damaged_item_is_escalated_ruled_returned_and_refunded(case: Case) -> None:
    dispute = case.opened("damaged", "return_and_refund")
    dispute_id = dispute["id"]
    case.seller.act(dispute_id, "reject", {"reason": "it left intact", "evidence": [PHOTO]})
    escalated = case.buyer.act(dispute_id, "escalate", {"reason": "the box was crushed"})
    assert escalated["state"] == "under_review"
    ruled = case.agent.act(
        dispute_id,
        "rule",
        {
            "decision": "return_and_refund",
            "return_shipping_paid_by": "seller",
            "rationale": "the photos show transit damage",
        },
    )
    assert ruled["state"] == "awaiting_return"
    shipped = case.buyer.act(
        dispute_id, "ship-return", {"carrier": "UPS", "tracking_number": "1Z999"}
    )
    assert shipped["state"] == "return_in_transit"
    # The service's clock, not ours: the sandbox may have moved it ahead.
    delivered_at = shipped["return"]["shipped_at"]
    case.logistics.act(dispute_id, "return-delivered", {"delivered_at": delivered_at})
    confirmed = case.seller.act(dispute_id, "confirm-return")
    assert confirmed["state"] == "refund_pending"
    closed = case.pay_refund(dispute_id, "re_damaged")
    assert (closed["state"], closed["outcome"]) == ("closed", "refunded_full")


def test_a_withdrawn_dispute_cannot_be_reopened(case: Case) -> None:
    dispute = case.opened("missing_parts")
    withdrawn = case.buyer.act(dispute["id"], "withdraw", {"reason": "the parts turned up"})
    assert (withdrawn["state"], withdrawn["outcome"]) == ("closed", "withdrawn")
    assert_problem(case.open("missing_parts"), 409, "dispute_exists")
    refused = case.buyer.send("POST", f"/v1/disputes/{dispute['id']}/escalate", {"reason": "x"})
    problem = assert_problem(refused, 409, "action_not_allowed")
    assert problem["allowed_actions"] == []


def test_an_order_whose_protection_ended_cannot_be_disputed(case: Case) -> None:
    order = case.register_order(placed_days_ago=120)
    problem = assert_problem(case.open("not_received"), 422, "protection_ended")
    ends = datetime.fromisoformat(order["protection_ends_at"].replace("Z", "+00:00"))
    assert ends.date().isoformat() in problem["detail"]


def test_parties_see_only_their_own_and_roles_are_held_to_their_actions(case: Case) -> None:
    dispute = case.opened("damaged")
    path = f"/v1/disputes/{dispute['id']}"
    assert_problem(case.stranger.get(path), 404, "dispute_not_found")
    assert_problem(case.stranger.get(f"/v1/orders/{case.order_id}"), 404, "order_not_found")
    stranger_action = case.stranger.send("POST", path + "/withdraw", {"reason": "mine?"})
    assert stranger_action.status_code == 404
    assert_problem(case.auditor.send("POST", path + "/messages", {"body": "hi"}), 403,
                   "role_not_permitted")  # fmt: skip
    assert_problem(case.buyer.send("POST", path + "/rule", {}), 403, "role_not_permitted")
    assert case.auditor.get(path).status_code == 200
    assert case.buyer.get(path).json()["state"] == "awaiting_seller"


def test_a_request_without_a_valid_token_never_reaches_the_service(
    client: httpx.Client,
) -> None:
    assert_problem(client.get("/v1/state-machine"), 401, "unauthenticated")
    forged = {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."}
    assert_problem(client.get("/v1/state-machine", headers=forged), 401, "unauthenticated")


def test_the_gateway_answers_503_while_the_service_is_down_and_recovers(
    stack: Stack, case: Case, client: httpx.Client
) -> None:
    stack.stop("service")
    try:
        down = case.agent.get("/v1/state-machine")
        assert_problem(down, 503, "upstream_unavailable")
        assert client.get("/readyz").status_code == 503
    finally:
        stack.start("service")
        stack.wait_ready(stack.gateway_url)
    assert case.agent.get("/v1/state-machine").status_code == 200
    case.opened("damaged")  # commands work again
