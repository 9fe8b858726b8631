"""Webhooks: the subscriptions API, and deliveries to a real HTTP receiver that fails,
answers slowly and recovers; on SQLite and PostgreSQL.

The deliverer runs in this process (services.dispute.delivery.webhooks.Deliverer) on the
same store as the service under test; the e2e tests run it as its own process.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from standardwebhooks import Webhook

from services.dispute.api.representations import event_id
from services.dispute.delivery.store import Attempt, WebhookStore
from services.dispute.delivery.webhooks import Deliverer
from tests.webhook_receiver import Received, receiver

from .http_support import Api, running_service

FAST_RETRIES = (0.1, 0.2, 0.4)


@pytest.fixture
def api(backend: dict[str, str]) -> Iterator[Api]:
    with running_service(backend, webhooks_allow_private=True, threads=4) as service:
        yield service


@pytest.fixture
def strict_api(backend: dict[str, str]) -> Iterator[Api]:
    with running_service(backend, threads=4) as service:
        yield service


def subscribe(api: Api, url: str, events: list[str] | None = None, who: str = "payments") -> dict:
    response = api.call(
        "POST", "/v1/webhooks", "service", who, {"url": url, "events": events or ["*"]}
    )
    assert response.status_code == 201, response.text
    return response.json()


def deliverer(api: Api, **options: Any) -> Deliverer:
    app = api.client.app.state.application  # type: ignore[attr-defined]
    defaults: dict[str, Any] = {"schedule": FAST_RETRIES, "timeout": 2.0, "lease": 5.0}
    return Deliverer(
        app, WebhookStore(app), allow_private=True, poll=0.02, **{**defaults, **options}
    )


@contextmanager
def delivering(api: Api, **options: Any) -> Iterator[Deliverer]:
    """A deliverer running in threads until the block ends."""
    running = deliverer(api, **options)
    stop = threading.Event()
    thread = threading.Thread(target=running.run_forever, args=(stop,))
    thread.start()
    try:
        yield running
    finally:
        stop.set()
        thread.join(timeout=30)
        running.close()


def feed(api: Api, after: int = 0) -> list[dict]:
    return api.call("GET", f"/v1/events?after={after}&limit=1000", "service", "x").json()["events"]


def first_of_each(received: list[Received]) -> list[Received]:
    seen: set[str] = set()
    out = []
    for r in received:
        if r.event_id not in seen:
            seen.add(r.event_id)
            out.append(r)
    return out


def some_events(api: Api) -> dict:
    dispute = api.open_dispute()
    api.act(dispute, "messages", "buyer", "b1", {"body": "hello"})
    api.act(dispute, "offer", "seller", "s1", {"type": "full_refund"})
    return dispute


# The subscriptions API ---------------------------------------------------------------


def test_a_service_subscribes_sees_its_own_webhooks_and_the_secret_once(api: Api) -> None:
    created = api.call("POST", "/v1/webhooks", "service", "payments", {
        "url": "https://payments.example/hooks", "events": ["RefundStarted", "Settled"],
        "description": "pay refunds"})  # fmt: skip
    assert created.status_code == 201, created.text
    hook = created.json()
    assert created.headers["Location"] == f"/v1/webhooks/{hook['id']}"
    assert hook["secret"].startswith("whsec_") and len(hook["secret"]) > 40
    Webhook(hook["secret"])  # a secret the library takes
    assert hook["events"] == ["RefundStarted", "Settled"] and hook["status"] == "active"

    listed = api.call("GET", "/v1/webhooks", "service", "payments").json()["webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]]
    assert "secret" not in listed[0]
    one = api.call("GET", f"/v1/webhooks/{hook['id']}", "service", "payments").json()
    assert "secret" not in one and one["url"] == "https://payments.example/hooks"
    # another service does not see it; other roles may not call at all
    assert api.call("GET", "/v1/webhooks", "service", "logistics").json() == {"webhooks": []}
    assert api.call("GET", f"/v1/webhooks/{hook['id']}", "service", "logistics").status_code == 404
    assert api.call("GET", "/v1/webhooks", "agent", "a1").status_code == 403

    assert (
        api.call("DELETE", f"/v1/webhooks/{hook['id']}", "service", "logistics").status_code == 404
    )
    assert (
        api.call("DELETE", f"/v1/webhooks/{hook['id']}", "service", "payments").status_code == 204
    )
    assert api.call("GET", f"/v1/webhooks/{hook['id']}", "service", "payments").status_code == 404


BAD_SUBSCRIPTIONS = [
    ({"url": "http://payments.example/h", "events": ["*"]}, "url", "https"),
    ({"url": "https://127.0.0.1/h", "events": ["*"]}, "url", "public_address"),
    ({"url": "https://u:p@93.184.215.14/h", "events": ["*"]}, "url", "no_credentials"),
    ({"url": "https://x.example/" + "a" * 2100, "events": ["*"]}, "url", "max_length"),
    ({"url": "https://93.184.215.14/h", "events": ["Nope"]}, "events[0]", "event_type"),
    ({"url": "https://93.184.215.14/h", "events": []}, "events", "min_items"),
    ({"url": "https://93.184.215.14/h", "events": ["*", "Opened"]}, "events", "all_alone"),
    ({"url": "https://93.184.215.14/h", "events": ["Opened"] * 51}, "events", "max_items"),
    ({"url": "https://93.184.215.14/h", "events": ["*"], "description": "d" * 501},
     "description", "max_length"),
    ({"url": "https://93.184.215.14/h", "events": ["*"], "description": "a\x00b"},
     "description", "pattern"),
    ({"url": "https://93.184.215.14/h x", "events": ["*"]}, "url", "pattern"),
]  # fmt: skip


def test_bad_subscriptions_are_refused_naming_the_field_and_rule(strict_api: Api) -> None:
    for body, field, rule in BAD_SUBSCRIPTIONS:
        response = strict_api.call("POST", "/v1/webhooks", "service", "payments", body)
        assert response.status_code == 422, response.text
        errors = response.json()["errors"]
        assert any(e["field"] == field and e["rule"] == rule for e in errors), (body, errors)
    assert strict_api.call("GET", "/v1/webhooks", "service", "payments").json()["webhooks"] == []


def test_a_public_https_address_is_accepted_without_the_development_setting(
    strict_api: Api,
) -> None:
    body = {"url": "https://93.184.215.14/hooks", "events": ["*"]}
    assert strict_api.call("POST", "/v1/webhooks", "service", "p", body).status_code == 201


# Deliveries --------------------------------------------------------------------------


def test_every_event_is_delivered_in_order_signed_with_the_dispute_as_it_was(api: Api) -> None:
    with receiver() as endpoint:
        hook = subscribe(api, endpoint.url)
        dispute = some_events(api)
        with deliverer(api) as run:
            run.drain()

        events = feed(api)
        got = endpoint.wait_for(len(events))
        assert len(got) == len(events) == 5  # order registered, opened (order + dispute), 2
        wh = Webhook(hook["secret"])
        for r, event in zip(got, events, strict=True):
            body = wh.verify(r.body, r.headers)  # raises unless correctly signed
            assert r.event_id == event["id"] == body["data"]["event"]["id"]
            assert body["type"] == event["type"] and body["timestamp"] == event["at"]
            assert body["data"]["position"] == event["position"]
            assert body["data"]["version"] == event["version"]
        dispute_bodies = [r.json["data"] for r in got if "dispute_id" in r.json["data"]]
        assert [d["version"] for d in dispute_bodies] == [1, 2, 3]
        assert {d["dispute_id"] for d in dispute_bodies} == {dispute["id"]}
        # the dispute as it was after each event, not as it is now
        assert [d["dispute"]["version"] for d in dispute_bodies] == [1, 2, 3]
        assert [len(d["dispute"]["messages"]) for d in dispute_bodies] == [0, 1, 1]
        assert dispute_bodies[2]["dispute"]["offer"]["type"] == "full_refund"
        assert dispute_bodies[0]["dispute"]["offer"] is None
        for data in dispute_bodies:  # exactly what GET says of that version
            path = f"/v1/disputes/{dispute['id']}?version={data['version']}"
            assert data["dispute"] == api.call("GET", path, "service", "payments").json()
        order_bodies = [r.json["data"] for r in got if "order_id" in r.json["data"]]
        assert {d["order_id"] for d in order_bodies} == {dispute["order_id"]}

        log = api.call("GET", f"/v1/webhooks/{hook['id']}/deliveries", "service", "payments")
        entries = log.json()["deliveries"]
        assert [e["status"] for e in entries] == ["delivered"] * 5
        assert [e["position"] for e in reversed(entries)] == [e["position"] for e in events]
        assert all(e["response_code"] == 200 and e["attempt"] == 1 for e in entries)
        hook_now = api.call("GET", f"/v1/webhooks/{hook['id']}", "service", "payments").json()
        assert hook_now["position"] == events[-1]["position"]


def test_a_failing_then_slow_endpoint_is_retried_in_order_without_holding_up_others(
    api: Api,
) -> None:
    with receiver() as flaky, receiver() as healthy:
        flaky.fail_with = [500, 503]
        flaky.slow_times, flaky.slow_seconds = 1, 2.0  # beyond the 1 s timeout
        flaky_hook = subscribe(api, flaky.url)
        subscribe(api, healthy.url, who="logistics")
        with delivering(api, concurrency=2, timeout=1.0):
            some_events(api)
            events = feed(api)
            # the healthy endpoint gets everything while the flaky one is failing
            healthy.wait_for(len(events), timeout=20)
            assert len(first_of_each(flaky.delivered())) < len(events)
            # and the flaky one gets everything too, in order, once it recovers
            flaky.wait_for(len(events) + 1, timeout=30)  # + the slow one, answered too late
            time.sleep(0.3)

        assert [r.event_id for r in first_of_each(flaky.delivered())] == [e["id"] for e in events]
        assert [r.event_id for r in healthy.delivered()] == [e["id"] for e in events]
        answers = [r.answered for r in flaky.received]
        assert answers[:2] == [500, 503]
        log = api.call("GET", f"/v1/webhooks/{flaky_hook['id']}/deliveries?limit=500",
                       "service", "payments").json()["deliveries"][::-1]  # fmt: skip
        first = [e for e in log if e["position"] == events[0]["position"]]
        assert [(e["status"], e["response_code"], e["attempt"]) for e in first] == [
            ("failed", 500, 1), ("failed", 503, 2), ("failed", None, 3), ("delivered", 200, 4)
        ]  # fmt: skip
        assert "no answer within" in first[2]["error"]
        assert all(e["next_retry_at"] is not None for e in first[:3])
        # growing back-off between the failed attempts
        at = [time.mktime(time.strptime(e["at"][:19], "%Y-%m-%dT%H:%M:%S")) for e in first]
        assert at[0] <= at[1] <= at[2] <= at[3]
        assert {e["status"] for e in log if e["position"] != events[0]["position"]} == {"delivered"}


def test_a_redirect_is_a_failed_attempt_and_a_large_answer_does_not_stall_delivery(
    api: Api,
) -> None:
    with receiver() as odd, receiver() as elsewhere:
        odd.fail_with, odd.location = [307], elsewhere.url
        odd.body_bytes = 200_000  # beyond what is read: the connection is dropped each time
        hook = subscribe(api, odd.url)
        with delivering(api, concurrency=1, timeout=2.0):
            some_events(api)
            events = feed(api)
            odd.wait_for(len(events), timeout=20)
        assert [r.event_id for r in first_of_each(odd.delivered())] == [e["id"] for e in events]
        assert elsewhere.received == []  # the redirect was not followed
        log = api.call("GET", f"/v1/webhooks/{hook['id']}/deliveries?limit=500",
                       "service", "payments").json()["deliveries"][::-1]  # fmt: skip
        assert [(e["status"], e["response_code"]) for e in log[:2]] == [
            ("failed", 307), ("delivered", 200)
        ]  # fmt: skip
        assert log[0]["error"] == "answered 307"


def test_a_subscription_gets_only_its_event_types_and_replays_from_a_position(api: Api) -> None:
    with receiver() as endpoint:
        hook = subscribe(api, endpoint.url, ["MessagePosted", "OfferMade"])
        some_events(api)
        run = deliverer(api)
        run.drain()
        got = endpoint.wait_for(2)
        assert [r.json["type"] for r in got] == ["MessagePosted", "OfferMade"]

        replay = api.call("POST", f"/v1/webhooks/{hook['id']}/replay", "service", "payments",
                          {"after": got[0].json["data"]["position"]})  # fmt: skip
        assert replay.status_code == 202, replay.text
        run.drain()
        again = endpoint.wait_for(3)
        assert again[2].event_id == got[1].event_id  # the same webhook-id: deduplicable
        too_far = api.call("POST", f"/v1/webhooks/{hook['id']}/replay", "service", "payments",
                           {"after": 10**9})  # fmt: skip
        assert too_far.status_code == 422 and too_far.json()["errors"][0]["field"] == "after"
        run.close()


def test_two_deliverers_at_once_deliver_each_event_once(api: Api) -> None:
    with receiver() as first, receiver() as second:
        subscribe(api, first.url)
        subscribe(api, second.url, who="logistics")
        with delivering(api, concurrency=2), delivering(api, concurrency=2):
            for _ in range(4):
                some_events(api)
            events = feed(api)
            first.wait_for(len(events))
            second.wait_for(len(events))
            time.sleep(0.5)  # anything delivered twice would have arrived by now
        for endpoint in (first, second):
            assert [r.event_id for r in endpoint.received] == [e["id"] for e in events]


def test_an_event_that_cannot_be_decoded_is_delivered_as_what_is_known_of_it(api: Api) -> None:
    app = api.client.app.state.application  # type: ignore[attr-defined]
    with receiver() as endpoint:
        subscribe(api, endpoint.url)
        api.register_order()
        stranger = uuid.uuid4()
        topic = "services.dispute.domain.dispute:Dispute.FromTheFuture"
        odd_event = StoredEvent(
            originator_id=stranger, originator_version=1, topic=topic, state=b"{}"
        )
        app.recorder.insert_events([odd_event])
        api.register_order()
        with deliverer(api) as run:
            run.drain()
        got = endpoint.wait_for(3)
        assert [r.json["type"] for r in got] == ["Registered", "FromTheFuture", "Registered"]
        odd = got[1].json["data"]
        assert odd["dispute_id"] == str(stranger) and odd["event"]["undecodable"] is True
        assert got[1].event_id == event_id(stranger, 1)


def attempt_at(position: int, status: str, attempt: int = 1, retry: float | None = None) -> Attempt:
    return Attempt(
        event_id=f"e{position}", position=position, event_type="Opened", attempt=attempt,
        status=status, response_code=200 if status == "delivered" else 500, error=None,
        attempted_at=100.0, duration_ms=1, next_retry_at=retry, event_at=99.0,
    )  # fmt: skip


def test_the_store_records_deliveries_and_a_failure_with_the_position_in_one_go(
    api: Api,
) -> None:
    store = WebhookStore(api.client.app.state.application)  # type: ignore[attr-defined]
    sub = store.create("svc", "https://93.184.215.14/h", ["*"], None, position=0, now=100.0)
    claimed = store.claim("t1", below=10, now=100.0, lease=30)
    assert claimed is not None and claimed.id == sub.id
    assert store.claim("t2", below=10, now=101.0, lease=30) is None  # held by t1
    # two delivered, then the third fails: one transaction
    assert store.record(claimed, "t1", delivered=[attempt_at(1, "delivered"),
                        attempt_at(2, "delivered")], failure=attempt_at(3, "failed", 1, 105.0),
                        passed=2, now=102.0)  # fmt: skip
    after = store.get("svc", sub.id)
    assert after is not None
    assert (after.position, after.attempts, after.next_attempt_at) == (2, 1, 105.0)
    assert after.failing_since == 102.0
    assert store.claim("t3", below=10, now=104.0, lease=30) is None  # not due yet
    again = store.claim("t3", below=10, now=105.0, lease=30)
    assert again is not None and again.attempts == 1
    # a claim that was lost records nothing
    assert not store.record(again, "t1", delivered=[attempt_at(3, "delivered")], passed=3,
                            now=106.0)  # fmt: skip
    assert store.record(again, "t3", delivered=[attempt_at(3, "delivered", 2)], passed=3,
                        now=106.0)  # fmt: skip
    done = store.get("svc", sub.id)
    assert done is not None and (done.position, done.attempts, done.failing_since) == (3, 0, None)
    log = store.deliveries(sub.id, limit=10)
    assert [(e.attempt.position, e.attempt.status) for e in reversed(log)] == [
        (1, "delivered"), (2, "delivered"), (3, "failed"), (3, "delivered")]  # fmt: skip
