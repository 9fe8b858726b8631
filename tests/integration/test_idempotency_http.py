"""Idempotency-Key with Stripe's semantics, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.dispute.api import representations
from services.dispute.domain import Actor, Role
from services.dispute.infrastructure.idempotency import Claim, Claimed, Completion, fingerprint
from tests.integration.app_commands import act

from .http_support import Api, dispute_body, headers, running_service, uvicorn_server
from .test_recorder_idempotency import die


@pytest.fixture
def api(backend: dict[str, str]) -> Iterator[Api]:
    with running_service(backend) as service:
        yield service


def event_count(api: Api, dispute_id: str) -> int:
    history = api.call("GET", f"/v1/disputes/{dispute_id}/events", "auditor", "au").json()
    return len(history["events"])


def test_a_repeat_with_the_same_key_replays_the_first_response_and_does_nothing(
    api: Api,
) -> None:
    order = api.register_order()
    body = dispute_body(order)
    first = api.call("POST", "/v1/disputes", "buyer", "b1", body, Idempotency_Key="open-1")
    again = api.call("POST", "/v1/disputes", "buyer", "b1", body, Idempotency_Key="open-1")

    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["ETag"] == first.headers["ETag"] == '"1"'
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    dispute = first.json()
    message = {"body": "hello"}
    sent = api.act(dispute, "messages", "buyer", "b1", message, Idempotency_Key="m-1")
    resent = api.act(dispute, "messages", "buyer", "b1", message, Idempotency_Key="m-1")
    assert resent.json() == sent.json() and resent.headers["ETag"] == '"2"'
    assert event_count(api, dispute["id"]) == 2


def test_the_same_key_with_another_body_is_refused(api: Api) -> None:
    dispute = api.open_dispute()
    api.act(dispute, "messages", "buyer", "b1", {"body": "one"}, Idempotency_Key="k")
    other = api.act(dispute, "messages", "buyer", "b1", {"body": "two"}, Idempotency_Key="k")
    assert other.status_code == 422
    assert other.json()["type"] == "https://disputes.internal/problems/idempotency_key_reused"
    elsewhere = api.act(dispute, "evidence", "buyer", "b1", {"evidence": []}, Idempotency_Key="k")
    assert elsewhere.status_code == 422  # another path: another request
    assert event_count(api, dispute["id"]) == 2


def test_a_key_of_another_principal_is_independent(api: Api) -> None:
    dispute = api.open_dispute()
    by_buyer = api.act(dispute, "messages", "buyer", "b1", {"body": "x"}, Idempotency_Key="k")
    by_seller = api.act(dispute, "messages", "seller", "s1", {"body": "x"}, Idempotency_Key="k")
    assert by_buyer.status_code == by_seller.status_code == 200
    assert by_seller.json()["version"] == 3


def test_a_refusal_is_replayed_too(api: Api) -> None:
    dispute = api.open_dispute()
    refused = api.act(dispute, "accept-offer", "buyer", "b1", Idempotency_Key="ao")
    api.act(dispute, "offer", "seller", "s1", {"type": "replacement"})
    retried = api.act(dispute, "accept-offer", "buyer", "b1", Idempotency_Key="ao")
    assert refused.status_code == retried.status_code == 409
    assert retried.content == refused.content
    assert event_count(api, dispute["id"]) == 2


def test_invalid_input_keeps_no_result_so_the_corrected_request_may_use_the_key(
    api: Api,
) -> None:
    order = api.register_order()
    too_much = {**dispute_body(order), "amount": {"amount": 10**9, "currency": "USD"}}
    refused = api.call("POST", "/v1/disputes", "buyer", "b1", too_much, Idempotency_Key="o")
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("/invalid_input")
    again = api.call("POST", "/v1/disputes", "buyer", "b1", too_much, Idempotency_Key="o")
    assert again.status_code == 422 and "Idempotent-Replayed" not in again.headers
    fixed = api.call("POST", "/v1/disputes", "buyer", "b1", dispute_body(order),
                     Idempotency_Key="o")  # fmt: skip
    assert fixed.status_code == 201, fixed.text
    assert event_count(api, fixed.json()["id"]) == 1


def test_a_response_lost_after_the_commit_is_replayed_on_retry(api: Api) -> None:
    """The events and the response commit together; the process 'dies' before answering."""
    dispute = api.open_dispute()
    application: Any = api.client.app.state.application  # type: ignore[attr-defined]
    actor = Actor(Role.SELLER, "s1")
    path = f"/v1/disputes/{dispute['id']}/offer"
    body = b'{"type": "replacement", "message": "new one"}'
    claim = Claim("seller:s1", "lost-1", fingerprint("POST", path, body))
    assert isinstance(application.recorder.try_claim(claim, time.time(), 30), Claimed)
    act(
        application,
        actor,
        "req-lost",
        dispute["id"],
        "offer",
        {"type": "replacement", "message": "new one"},
        respond=lambda d, _: Completion(claim, representations.dispute_reply(d, actor)),
    )  # fmt: skip  -- and the response never reaches the caller

    retry = api.client.post(
        path, content=body, headers=headers("seller", "s1", **{"Idempotency-Key": "lost-1",
                                                               "Content-Type": "application/json"})
    )  # fmt: skip

    assert retry.status_code == 200, retry.text
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json()["offer"]["type"] == "replacement" and retry.json()["version"] == 2
    assert event_count(api, dispute["id"]) == 2


def test_a_key_abandoned_by_a_process_that_died_is_free_for_the_retry(api: Api) -> None:
    """The process claimed the key and died before its commit: the retry executes at
    once (no lease to wait out)."""
    dispute = api.open_dispute()
    application: Any = api.client.app.state.application  # type: ignore[attr-defined]
    path = f"/v1/disputes/{dispute['id']}/messages"
    body = b'{"body": "hi"}'
    crashed = Claim("buyer:b1", "crash-1", fingerprint("POST", path, body))
    assert isinstance(application.recorder.try_claim(crashed, time.time(), 30), Claimed)
    die(application.recorder, crashed)

    started = time.monotonic()
    retry = api.client.post(
        path,
        content=body,
        headers=headers(
            "buyer", "b1", **{"Idempotency-Key": "crash-1", "Content-Type": "application/json"}
        ),
    )

    assert retry.status_code == 200, retry.text
    assert time.monotonic() - started < 5  # not idempotency_wait_seconds then 409
    assert event_count(api, dispute["id"]) == 2


def test_concurrent_duplicates_execute_once(backend: dict[str, str]) -> None:
    with uvicorn_server(backend, threads=24) as base, httpx.Client(base_url=base) as client:
        order = f"o-dup-{time.time_ns()}"
        setup = headers("service", "orders")
        from .http_support import order_body

        assert client.put(f"/v1/orders/{order}", json=order_body(), headers=setup).is_success
        body = dispute_body(order)
        barrier = threading.Barrier(20)
        responses: list[httpx.Response] = []
        lock = threading.Lock()

        def send() -> None:
            with httpx.Client(base_url=base, timeout=30) as own:
                barrier.wait()
                response = own.post("/v1/disputes", json=body, headers=headers(
                    "buyer", "b1", **{"Idempotency-Key": "same"}))  # fmt: skip
            with lock:
                responses.append(response)

        threads = [threading.Thread(target=send) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        created = [r for r in responses if r.status_code == 201]
        in_progress = [r for r in responses if r.status_code == 409]
        assert len(created) + len(in_progress) == 20, [r.status_code for r in responses]
        assert created and len({r.content for r in created}) == 1
        for r in in_progress:
            assert r.json()["type"].endswith("/idempotency_in_progress")
        dispute_id = created[0].json()["id"]
        history = client.get(f"/v1/disputes/{dispute_id}/events",
                             headers=headers("auditor", "au")).json()  # fmt: skip
        assert len(history["events"]) == 1
