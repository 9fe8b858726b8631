"""History, as-of, the global feed, the state machine, request ids and the sandbox clock."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from services.dispute.api.representations import event_id
from services.dispute.domain import rules

from .http_support import TOKEN, Api, headers, running_service


@pytest.fixture
def api(backend: dict[str, str]) -> Iterator[Api]:
    with running_service(backend) as service:
        yield service


def test_the_history_lists_every_event_with_actor_time_and_request_id(api: Api) -> None:
    order = api.register_order()
    created = api.client.post("/v1/disputes", json={
        "order_id": order, "reason": "not_received", "requested_resolution": "refund_only",
        "amount": {"amount": 5000, "currency": "USD"}, "description": "never came"},
        headers={"X-Internal-Token": TOKEN, "X-Principal-Role": "buyer",
                 "X-Principal-Id": "b1", "X-Request-ID": "req-open-1"})  # fmt: skip
    assert created.headers["X-Request-ID"] == "req-open-1"
    dispute = created.json()
    api.act(dispute, "offer", "seller", "s1", {"type": "full_refund"}, X_Request_ID="req-offer")

    history = api.call("GET", f"/v1/disputes/{dispute['id']}/events", "auditor", "au1").json()

    assert history["dispute_id"] == dispute["id"]
    events = history["events"]
    assert [e["version"] for e in events] == [1, 2]
    assert [e["type"] for e in events] == ["Opened", "OfferMade"]
    assert events[0]["actor"] == {"role": "buyer", "id": "b1"}
    assert events[1]["actor"] == {"role": "seller", "id": "s1"}
    assert [e["request_id"] for e in events] == ["req-open-1", "req-offer"]
    assert events[0]["at"].endswith("Z")
    assert events[1]["payload"]["offer_type"] == "full_refund"


def test_every_response_carries_a_request_id(api: Api) -> None:
    response = api.call("GET", "/v1/state-machine", "agent", "a1")
    assert len(response.headers["X-Request-ID"]) == 36
    refused = api.client.get("/v1/state-machine", headers={"X-Request-ID": "mine-1"})
    assert refused.headers["X-Request-ID"] == "mine-1"
    assert refused.json()["request_id"] == "mine-1"


@pytest.mark.parametrize(("interval", "snapshots"), [(3, [3]), (5, [])])
def test_the_service_snapshots_a_dispute_every_snapshot_interval_events(
    backend: dict[str, str], interval: int, snapshots: list[int]
) -> None:
    with running_service(backend, snapshot_interval=interval) as service:
        dispute = service.open_dispute()
        for n in range(3):
            sent = service.act(dispute, "messages", "buyer", "b1", {"body": f"note {n}"})
            assert sent.status_code == 200, sent.text
        application = service.client.app.state.application  # type: ignore[attr-defined]
        stored = application.snapshots.get(uuid.UUID(dispute["id"]))
        assert [s.originator_version for s in stored] == snapshots


def test_a_dispute_as_it_was_at_a_version_or_a_moment(api: Api) -> None:
    dispute = api.open_dispute()
    time.sleep(0.01)
    between = datetime.now(UTC).isoformat()
    time.sleep(0.01)
    api.act(dispute, "reject", "seller", "s1", {"reason": "no"})
    path = f"/v1/disputes/{dispute['id']}"

    at_v1 = api.call("GET", f"{path}?version=1", "agent", "a1")
    as_of = api.client.get(path, params={"as_of": between},
                           headers=headers("agent", "a1"))  # fmt: skip
    now = api.call("GET", path, "agent", "a1").json()

    assert at_v1.json()["state"] == "awaiting_seller" and at_v1.headers["ETag"] == '"1"'
    assert at_v1.json()["allowed_actions"] == []
    assert as_of.json()["version"] == 1 and as_of.json()["state"] == "awaiting_seller"
    assert now["state"] == "negotiating" and now["version"] == 2
    assert api.call("GET", f"{path}?version=9", "agent", "a1").status_code == 404
    naive = api.client.get(path, params={"as_of": "2020-01-01T00:00:00"},
                           headers=headers("agent", "a1"))  # fmt: skip
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "as_of"


def test_the_feed_lists_every_event_in_commit_order_and_resumes(api: Api) -> None:
    first = api.open_dispute()
    second = api.open_dispute()
    api.act(first, "messages", "buyer", "b1", {"body": "hello"})

    page = api.call("GET", "/v1/events?limit=3", "service", "projector").json()
    rest = api.call("GET", f"/v1/events?after={page['next_after']}", "auditor", "au").json()
    empty = api.call("GET", f"/v1/events?after={rest['next_after']}", "agent", "a").json()

    events = page["events"] + rest["events"]
    positions = [e["position"] for e in events]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    # each order: registered, then its dispute opened (order + dispute events), then a message
    assert sum(e["stream"] == "dispute" for e in events) == 3
    assert {e["stream_id"] for e in events if e["stream"] == "order"} == {
        first["order_id"], second["order_id"]}  # fmt: skip
    assert events[-1]["type"] == "MessagePosted" and events[-1]["stream_id"] == first["id"]
    assert empty == {"events": [], "next_after": rest["next_after"]}


def test_every_event_has_a_unique_id_the_same_in_the_history_and_the_feed(api: Api) -> None:
    first = api.open_dispute()
    second = api.open_dispute()
    api.act(first, "messages", "buyer", "b1", {"body": "hello"})

    feed = api.call("GET", "/v1/events?limit=1000", "service", "svc").json()["events"]
    ids = [e["id"] for e in feed]
    assert len(set(ids)) == len(ids) == 7  # 2 orders x (registered, dispute opened) + 3
    assert all(str(uuid.UUID(i)) == i for i in ids)
    for dispute in (first, second):
        path = f"/v1/disputes/{dispute['id']}/events"
        history = api.call("GET", path, "auditor", "au").json()["events"]
        again = api.call("GET", path, "agent", "a").json()["events"]
        in_feed = [e for e in feed if e["stream_id"] == dispute["id"]]
        # stable between reads, and one id per event whichever way it is read
        assert [e["id"] for e in history] == [e["id"] for e in again]
        assert [e["id"] for e in history] == [e["id"] for e in in_feed]
        # derived from what the store holds (so events stored before ids existed have one)
        assert history[0]["id"] == event_id(uuid.UUID(dispute["id"]), 1)


def test_the_state_machine_is_the_transition_table(api: Api) -> None:
    machine = api.call("GET", "/v1/state-machine", "buyer", "b1").json()
    assert machine["states"] == rules.STATES
    assert machine["actions"] == [rules.action_name(t) for t in rules.ACTION_TRIGGERS]
    assert machine["mermaid"].startswith("---") or "stateDiagram" in machine["mermaid"]
    assert {"trigger": "escalate", "action": "escalate", "source": "negotiating",
            "dest": "under_review", "conditions": ["by_buyer"],
            "roles": ["buyer"]} in machine["transitions"]  # fmt: skip


@pytest.fixture
def sandbox_api(backend: dict[str, str]) -> Iterator[Api]:
    with running_service(backend, sandbox=True) as service:
        yield service


def test_the_sandbox_clock_fires_the_deadlines_now_due(sandbox_api: Api) -> None:
    api = sandbox_api
    dispute = api.open_dispute(requested_resolution="refund_only")

    moved = api.call("POST", "/v1/sandbox/clock", "agent", "a1", {"advance": "P6D"})

    assert moved.status_code == 200, moved.text
    assert moved.json()["offset_seconds"] > 6 * 86400 - 60
    after = api.call("GET", f"/v1/disputes/{dispute['id']}", "buyer", "b1").json()
    assert after["state"] == "refund_pending"  # the seller's silence granted the request
    bad = api.call("POST", "/v1/sandbox/clock", "agent", "a1", {"advance": "five days"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "advance"


def test_the_sandbox_clock_answers_its_time_and_a_retried_advance_moves_it_once(
    sandbox_api: Api,
) -> None:
    api = sandbox_api
    before = api.call("GET", "/v1/sandbox/clock", "buyer", "b1")
    assert before.status_code == 200, before.text
    assert before.json()["offset_seconds"] == 0

    key = {"Idempotency-Key": "advance-1"}
    first = api.call("POST", "/v1/sandbox/clock", "agent", "a1", {"advance": "P2D"}, **key)
    again = api.call("POST", "/v1/sandbox/clock", "agent", "a1", {"advance": "P2D"}, **key)

    assert first.status_code == again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
    now = api.call("GET", "/v1/sandbox/clock", "service", "svc").json()
    assert now["offset_seconds"] == first.json()["offset_seconds"]
    assert 2 * 86400 - 60 < now["offset_seconds"] <= 2 * 86400
