"""Whole cases through the public API only, against the real processes on PostgreSQL:
the gateway, the dispute service and the deadline worker (sandbox clock on)."""

from __future__ import annotations

import hashlib
import time
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
        self.stack = stack
        tag = uuid.uuid4().hex[:8]
        self.order_id = f"ord-{tag}"
        self.buyer = Party(client, stack, "buyer", f"buyer-{tag}")
        self.seller = Party(client, stack, "seller", f"seller-{tag}")
        self.agent = Party(client, stack, "agent", "agent-1")
        self.second_agent = Party(client, stack, "agent", "agent-2")
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

    def opened(self, reason: str, resolution: str = "refund_only", **extra: Any) -> dict[str, Any]:
        self.register_order()
        response = self.open(reason, resolution, **extra)
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

    def charge_back(self, reference: str, amount: int = 5000) -> httpx.Response:
        body = {"reference": reference, "amount": usd(amount), "reason": "not recognised",
                "opened_at": datetime.now(UTC).isoformat()}  # fmt: skip
        return self.payments.send("POST", f"/v1/orders/{self.order_id}/chargebacks", body)


def settled_stats(party: Party, figure: str) -> dict[str, Any]:
    """A /v1/stats figure once the projector has caught up (lag 0)."""
    deadline = time.monotonic() + 30
    while True:
        response = party.get(f"/v1/stats/{figure}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["lag"]["events"] == 0:
            return body
        assert time.monotonic() < deadline, f"the projector did not catch up: {body['lag']}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def projector(stack: Stack) -> Iterator[None]:
    """The projector following the event log into the dashboard views."""
    stack.start("projector")
    try:
        yield
    finally:
        stack.stop("projector")


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
    assert ruled["state"] == "ruled"  # final once the appeal window (3 days) ends
    moved = case.agent.send("POST", "/v1/sandbox/clock", {"advance": "P3DT1H"})
    assert moved.status_code == 200, moved.text
    effective = case.buyer.get(f"/v1/disputes/{dispute_id}").json()
    assert effective["state"] == "awaiting_return"
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


def test_an_order_not_yet_shipped_is_cancelled_and_refunded_when_the_seller_is_silent(
    case: Case,
) -> None:
    dispute = case.opened("not_shipped", evidence=[])
    assert dispute["reason"] == "not_shipped" and dispute["evidence"] == []
    moved = case.agent.send("POST", "/v1/sandbox/clock", {"advance": "P5DT1H"})
    assert moved.status_code == 200, moved.text
    granted = case.buyer.get(f"/v1/disputes/{dispute['id']}").json()
    assert granted["state"] == "refund_pending"
    assert granted["refund"]["amount"] == usd(5000)
    closed = case.pay_refund(dispute["id"], "re_cancelled")
    assert closed["outcome"] == "refunded_full"


def test_a_shipped_order_cannot_be_cancelled_but_reported_shipping_changes_nothing(
    case: Case,
) -> None:
    dispute = case.opened("not_shipped", evidence=[])
    order = case.logistics.get(f"/v1/orders/{case.order_id}").json()
    shipped = {k: order[k] for k in ("buyer_id", "seller_id", "amount", "payment_method",
                                     "placed_at")}  # fmt: skip
    shipped["shipped_at"] = order["placed_at"]
    updated = case.logistics.send("PUT", f"/v1/orders/{case.order_id}", shipped)
    assert updated.status_code == 200, updated.text
    unchanged = case.seller.get(f"/v1/disputes/{dispute['id']}").json()
    assert unchanged["version"] == dispute["version"]
    refused = case.seller.send(
        "POST", f"/v1/disputes/{dispute['id']}/reject", {"reason": "sent", "evidence": [PHOTO]}
    )
    assert assert_problem(refused, 422, "invalid_input")["errors"][0]["rule"] == (
        "tracking_required"
    )
    other = Case(case.buyer.client, case.stack)
    other.register_order(shipped_at=datetime.now(UTC).isoformat())
    assert_problem(other.open("not_shipped", evidence=[]), 422, "order_shipped")


def test_an_appeal_is_decided_by_another_agent_and_is_final(case: Case, projector: None) -> None:
    dispute = case.opened("damaged")
    dispute_id = dispute["id"]
    case.seller.act(dispute_id, "reject", {"reason": "it left intact", "evidence": [PHOTO]})
    case.buyer.act(dispute_id, "escalate", {"reason": "crushed"})
    ruled = case.agent.act(dispute_id, "rule", {"decision": "full_refund", "rationale": "photos"})
    assert ruled["state"] == "ruled" and ruled["ruling"]["final_at"]
    assert "appeal" not in case.buyer.get(f"/v1/disputes/{dispute_id}").json()["allowed_actions"]
    appealed = case.seller.act(
        dispute_id, "appeal", {"reason": "courier photo shows it intact", "evidence": [PHOTO]}
    )
    assert appealed["state"] == "under_appeal" and appealed["appeal"]["by"] == "seller"
    recommendation = case.second_agent.get(f"/v1/disputes/{dispute_id}").json()["recommendation"]
    assert recommendation["basis"].startswith("appeal by the seller")
    same_agent = case.agent.send(
        "POST", f"/v1/disputes/{dispute_id}/rule", {"decision": "seller_favoured", "rationale": "x"}
    )
    assert "rule" not in assert_problem(same_agent, 409, "action_not_allowed")["allowed_actions"]
    final = case.second_agent.act(
        dispute_id, "rule", {"decision": "seller_favoured", "rationale": "intact on delivery"}
    )
    assert (final["state"], final["outcome"]) == ("closed", "seller_favoured")
    assert final["appeal"]["overturned"] is True
    again = case.buyer.send(
        "POST", f"/v1/disputes/{dispute_id}/appeal", {"reason": "no", "evidence": [PHOTO]}
    )
    assert_problem(again, 409, "action_not_allowed")
    appeals = settled_stats(case.auditor, "appeals")
    assert appeals["filed"] >= 1 and appeals["overturned"] >= 1
    machine = case.buyer.get("/v1/state-machine").json()
    for name in ("ruled", "under_appeal", "appeal_window_timeout", "chargeback"):
        assert name in machine["mermaid"]


def test_a_chargeback_closes_the_open_dispute_and_blocks_a_later_refund(case: Case) -> None:
    dispute = case.opened("not_received")
    case.seller.act(dispute["id"], "accept")
    charged = case.charge_back("cb_open")
    assert charged.status_code == 201, charged.text
    assert charged.json()["chargebacks"][0]["double_recovery"] is False
    closed = case.buyer.get(f"/v1/disputes/{dispute['id']}").json()
    assert (closed["state"], closed["outcome"]) == ("closed", "chargeback")
    late = case.payments.send(
        "POST", f"/v1/disputes/{dispute['id']}/refund-paid",
        {"reference": "re_late", "paid_at": datetime.now(UTC).isoformat()},
    )  # fmt: skip
    assert "chargeback" in assert_problem(late, 409, "action_not_allowed")["detail"]


def test_a_chargeback_after_a_paid_refund_is_a_double_recovery_on_the_dashboard(
    case: Case, projector: None
) -> None:
    dispute = case.opened("wrong_item")
    case.seller.act(dispute["id"], "accept")
    case.pay_refund(dispute["id"], "re_first")
    charged = case.charge_back("cb_double", 4000)
    [recorded] = charged.json()["chargebacks"]
    assert recorded["double_recovery"] is True and recorded["amount_at_risk"] == usd(4000)
    figures = settled_stats(case.agent, "chargebacks")
    assert any(
        d["reference"] == "cb_double" and d["amount_at_risk"] == usd(4000) for d in figures["data"]
    )
    sellers = settled_stats(case.agent, "sellers")
    mine = next(s for s in sellers["data"] if s["seller_id"] == case.seller.id)
    assert (mine["orders"], mine["dispute_rate"], mine["reason_mix"]) == (
        1, 1.0, {"wrong_item": 1.0},
    )  # fmt: skip


def test_an_order_with_a_chargeback_cannot_be_disputed(case: Case) -> None:
    case.register_order()
    assert case.charge_back("cb_first").status_code == 201
    assert_problem(case.open("not_received"), 409, "order_charged_back")
    assert_problem(case.charge_back("cb_first"), 409, "chargeback_exists")
    assert_problem(
        case.buyer.send("POST", f"/v1/orders/{case.order_id}/chargebacks", {}),
        403, "role_not_permitted",
    )  # fmt: skip
