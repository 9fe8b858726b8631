"""Hostile input against the real processes on PostgreSQL: every case of issue 10
answers a 4xx problem (or is served correctly), and nothing unusual stops a reader or
the stack. One module-scoped stack; each case is a few requests."""

from __future__ import annotations

import http.client
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from psycopg import sql

from shared.internal import DEV_SERVICE_TOKEN
from tests.conftest import PgConnInfo, connect

from .stack import JWT_SECRET, SERVICE_TOKEN, Stack, e2e_stack

pytestmark = pytest.mark.e2e

PROBLEM = "application/problem+json"
PHOTO = {"kind": "photo", "uri": "https://files.example/p.jpg", "sha256": "a" * 64}


@pytest.fixture(scope="module")
def stack(pg_conninfo: PgConnInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """All four processes: the projector too, whose quarantine is under test."""
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    info = pg_conninfo
    url = f"postgresql://{info['user']}:{info['password']}@{info['host']}:{info['port']}/"
    url += info["dbname"]
    running = e2e_stack(url, schema, tmp_path_factory.mktemp("hostile-logs"))
    try:
        running.start_all(others=("worker", "projector", "gateway"))
        yield running
    finally:
        running.stop_all()
        with connect(pg_conninfo) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.fixture(scope="module")
def gw(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        yield client


def auth(stack: Stack, role: str, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token(role, sub)}"}


def problem(answer: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM, answer.text
    body: dict[str, Any] = answer.json()
    if code is not None:
        assert body["type"].endswith("/" + code), body
    return body


def fields(body: dict[str, Any]) -> set[str]:
    return {e["field"] for e in body.get("errors") or []}


def order_body(**overrides: Any) -> dict[str, Any]:
    return {
        "buyer_id": "b1",
        "seller_id": "s1",
        "amount": {"amount": 5000, "currency": "USD"},
        "payment_method": "card",
        "placed_at": (datetime.now(UTC) - timedelta(days=3)).isoformat(),
        **overrides,
    }


def new_order(gw: httpx.Client, stack: Stack, **overrides: Any) -> str:
    ref = f"o-{uuid.uuid4().hex[:10]}"
    answer = gw.put(f"/v1/orders/{ref}", json=order_body(**overrides),
                    headers=auth(stack, "service", "orders"))  # fmt: skip
    assert answer.status_code == 201, answer.text
    return ref


def new_dispute(gw: httpx.Client, stack: Stack, buyer: str = "b1") -> dict[str, Any]:
    ref = new_order(gw, stack, buyer_id=buyer)
    answer = gw.post("/v1/disputes", headers=auth(stack, "buyer", buyer), json={
        "order_id": ref, "reason": "damaged", "requested_resolution": "refund_only",
        "amount": {"amount": 5000, "currency": "USD"}, "description": "broken",
        "evidence": [PHOTO]})  # fmt: skip
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def raw(stack: Stack, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
    """A request whose path goes out exactly as written (curl --path-as-is)."""
    connection = http.client.HTTPConnection("127.0.0.1", stack.gateway_port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


# Poison at the door: nothing a reader cannot handle is stored -------------------------


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/orders/{ref}", {"seller_id": "s\x00"}, "seller_id"),
        ("/v1/orders/{ref}", {"buyer_id": "b1\n"}, "buyer_id"),
        ("/v1/orders/{ref}", {"amount": {"amount": 2**63, "currency": "USD"}}, "amount.amount"),
        ("/v1/orders/{ref}", {"amount": {"amount": -1, "currency": "USD"}}, "amount.amount"),
        ("/v1/orders/{ref}", {"placed_at": "9999-12-31T23:59:59Z"}, "placed_at"),
        ("/v1/orders/{ref}", {"placed_at": "0001-01-01T00:00:00+01:00"}, "placed_at"),
        ("/v1/orders/o-%00x", {}, "order_id"),
        ("/v1/orders/caf%C3%A9", {}, "order_id"),
        ("/v1/orders/o%E2%80%AEx", {}, "order_id"),
        ("/v1/orders/{long}", {}, "order_id"),
    ],
    ids=[
        "nul-seller",
        "newline-buyer",
        "amount-2^63",
        "negative-amount",
        "year-9999",
        "year-1",
        "nul-id",
        "cafe-id",
        "rlo-id",
        "long-id",
    ],
)
def test_an_order_a_reader_could_not_handle_is_refused_and_not_stored(
    gw: httpx.Client, stack: Stack, path: str, body: dict[str, Any], field: str
) -> None:
    ref = f"o-{uuid.uuid4().hex[:10]}"
    target = path.format(ref=ref, long="o" * 129)
    headers = auth(stack, "service", "orders")
    answer = gw.put(target, json=order_body(**body), headers=headers)
    assert field in fields(problem(answer, 422, "invalid_input"))
    if "{ref}" in path:
        problem(gw.get(f"/v1/orders/{ref}", headers=headers), 404)


def test_evidence_must_be_https(gw: httpx.Client, stack: Stack) -> None:
    ref = new_order(gw, stack)
    for uri in ("javascript:alert(1)", "data:text/html,<b>x</b>", "http://files.example/p.jpg",
                "https://files.example/a b.jpg", "ftp://files.example/p.jpg"):  # fmt: skip
        answer = gw.post("/v1/disputes", headers=auth(stack, "buyer", "b1"), json={
            "order_id": ref, "reason": "damaged", "requested_resolution": "refund_only",
            "amount": {"amount": 5000, "currency": "USD"}, "description": "broken",
            "evidence": [{**PHOTO, "uri": uri}]})  # fmt: skip
        assert "evidence[0].uri" in fields(problem(answer, 422, "invalid_input")), uri
    body = {
        "order_id": ref, "reason": "damaged", "requested_resolution": "refund_only",
        "amount": {"amount": 5000, "currency": "USD"}, "description": "broken",
    }  # fmt: skip
    buyer = auth(stack, "buyer", "b1")
    upper = gw.post("/v1/disputes", headers=buyer,
                    json={**body, "evidence": [{**PHOTO, "sha256": "A" * 64}]})  # fmt: skip
    assert fields(problem(upper, 422)) == {"evidence[0].sha256"}
    many = gw.post("/v1/disputes", headers=buyer, json={**body, "evidence": [PHOTO] * 21})
    assert fields(problem(many, 422)) == {"evidence"}


# 500s for bad input, now 4xx -------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("seller_id=s%00", "seller_id"),
        ("buyer_id=%E2%80%AE", "buyer_id"),
        ("reason=dam%00aged", "reason"),
        ("opened_after=0001-01-01T00:00:00%2B01:00", "opened_after"),
        ("opened_before=9999-12-31T23:59:59-01:00", "opened_before"),
        ("deadline_before=9999-12-31T23:59:59Z", "deadline_before"),
        ("cursor=" + "%5B" * 5000, "cursor"),
        ("limit=100000", "limit"),
    ],
)
def test_list_filters_out_of_range_are_422(
    gw: httpx.Client, stack: Stack, query: str, field: str
) -> None:
    answer = gw.get(f"/v1/disputes?{query}", headers=auth(stack, "agent", "a1"))
    assert field in fields(problem(answer, 422, "invalid_input"))


def test_a_forged_cursor_is_422_whatever_it_holds(gw: httpx.Client, stack: Stack) -> None:
    import base64

    def cursor(payload: bytes) -> str:
        return base64.urlsafe_b64encode(payload).decode().rstrip("=")

    for payload in (b'["2026-01-01T00:00:00+00:00", "x\\u0000y"]', b"[" * 300,
                    b'["9999-12-31T23:59:59-01:00", "x"]', b'{"a": 1}'):  # fmt: skip
        answer = gw.get("/v1/disputes", params={"cursor": cursor(payload)},
                        headers=auth(stack, "agent", "a1"))  # fmt: skip
        assert "cursor" in fields(problem(answer, 422, "invalid_input")), payload


def test_other_query_ranges_are_422(gw: httpx.Client, stack: Stack) -> None:
    agent = auth(stack, "agent", "a1")
    dispute = new_dispute(gw, stack)
    for target, field in (
        (f"/v1/disputes/{dispute['id']}?version=99999999999999999999", "version"),
        (f"/v1/disputes/{dispute['id']}?as_of=9999-12-31T23:59:59-01:00", "as_of"),
        ("/v1/events?after=99999999999999999999", "after"),
        ("/v1/stats/daily?to=0001-01-01", "to"),
        ("/v1/stats/daily?from=9999-12-31", "from"),
    ):
        assert field in fields(problem(gw.get(target, headers=agent), 422)), target


def test_a_token_sub_ending_in_a_newline_is_401(gw: httpx.Client) -> None:
    for claims in ({"sub": "b1\n", "role": "buyer"}, {"sub": "b1", "role": "buyer", "exp": 1e308},
                   {"sub": "b1", "role": "buyer", "exp": "9999999999"},
                   {"sub": ["b1"], "role": "buyer"}, {"sub": "b1", "role": ["buyer"]}):  # fmt: skip
        claims.setdefault("exp", int(time.time()) + 600)
        signed = jwt.encode(claims, JWT_SECRET, "HS256")
        answer = gw.get("/v1/state-machine", headers={"Authorization": f"Bearer {signed}"})
        problem(answer, 401, "unauthenticated")


# The gateway decides on the path it forwards --------------------------------------


def test_dot_segments_and_encoded_slashes_are_refused_before_routing(stack: Stack) -> None:
    buyer = auth(stack, "buyer", "b1")
    for path in ("/v1/disputes/../events", "/v1/disputes/%2e%2e/events",
                 "/v1/disputes/x%2F..%2F..%2Fevents/events", "/v1/orders/..%5Cx"):  # fmt: skip
        status, body = raw(stack, "GET", path, buyer)
        assert status == 400, (path, body)
        assert json.loads(body)["type"].endswith("/invalid_path")


# Uniform not-found -------------------------------------------------------------------


def test_someone_elses_dispute_and_a_missing_one_answer_the_same_bytes(
    gw: httpx.Client, stack: Stack
) -> None:
    theirs = new_dispute(gw, stack, buyer="b-owner")["id"]
    missing = str(uuid.uuid4())
    intruder = {**auth(stack, "buyer", "b-intruder"), "X-Request-ID": "same-request-id"}
    for query in ("", "?as_of=2099-01-01T00:00:00Z", "?as_of=2000-01-01T00:00:00Z",
                  "?version=1", "?version=999"):  # fmt: skip
        for suffix in ("", "/events", "/verification"):
            if suffix and query:
                continue
            a = gw.get(f"/v1/disputes/{theirs}{suffix}{query}", headers=intruder)
            b = gw.get(f"/v1/disputes/{missing}{suffix}{query}", headers=intruder)
            assert a.status_code == b.status_code == 404, (a.text, b.text)
            assert a.content.replace(theirs.encode(), b"ID") == b.content.replace(
                missing.encode(), b"ID"
            ), (query, suffix)


# The internal port -------------------------------------------------------------------


def test_the_service_trusts_no_published_token_and_checks_roles_itself(stack: Stack) -> None:
    with httpx.Client(base_url=stack.service_url, timeout=30) as service:
        dev = {"X-Internal-Token": DEV_SERVICE_TOKEN, "X-Principal-Role": "agent",
               "X-Principal-Id": "a1"}  # fmt: skip
        problem(service.get("/v1/state-machine", headers=dev), 401, "unauthenticated")
        vouched = {"X-Internal-Token": SERVICE_TOKEN, "X-Principal-Id": "b1"}
        for role in ("buyer", "seller", "auditor"):
            answer = service.post("/v1/sandbox/clock", json={"advance": "PT1M"},
                                  headers={**vouched, "X-Principal-Role": role})  # fmt: skip
            problem(answer, 403, "role_not_permitted")
        bad_id = {**vouched, "X-Principal-Role": "buyer", "X-Principal-Id": "b1 two"}
        problem(service.get("/v1/state-machine", headers=bad_id), 401, "unauthenticated")


# Smaller gaps ------------------------------------------------------------------------


def test_a_405_lists_every_method(gw: httpx.Client, stack: Stack) -> None:
    answer = gw.delete("/v1/orders/o-1", headers=auth(stack, "service", "orders"))
    problem(answer, 405, "method_not_allowed")
    assert answer.headers["allow"] == "GET, PUT"


def test_a_reused_idempotency_key_is_422_as_documented(gw: httpx.Client, stack: Stack) -> None:
    dispute = new_dispute(gw, stack)
    headers = {**auth(stack, "buyer", "b1"), "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    path = f"/v1/disputes/{dispute['id']}/messages"
    assert gw.post(path, json={"body": "one"}, headers=headers).status_code == 200
    problem(gw.post(path, json={"body": "two"}, headers=headers), 422, "idempotency_key_reused")
    document = gw.get("/openapi.json").json()
    assert "idempotency_key_reused (422" in document["info"]["description"]


def test_huge_headers_and_tokens_are_refused(gw: httpx.Client, stack: Stack) -> None:
    problem(gw.get("/v1/state-machine", headers={"X-Pad": "a" * 1_000_000}), 431)
    problem(gw.get("/v1/state-machine", headers={"Authorization": "Bearer " + "a" * 200_000}), 431)
    problem(gw.get("/v1/state-machine", headers={"Authorization": "Bearer " + "a" * 8000}), 401)


def test_security_headers_everywhere(gw: httpx.Client, stack: Stack) -> None:
    for answer in (gw.get("/dashboard"), gw.get("/v1/state-machine"),
                   gw.get("/v1/state-machine", headers=auth(stack, "agent", "a1"))):  # fmt: skip
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]


# Readers that cannot be poisoned, in the real processes --------------------------------


def test_a_poison_event_is_quarantined_and_the_stack_keeps_serving(
    gw: httpx.Client, stack: Stack, pg_conninfo: PgConnInfo
) -> None:
    """An event stored before the door had limits (as main stored them): a NUL in a
    seller id, which PostgreSQL refuses in the views. The projector sets it aside."""
    from services.dispute.application import DisputeApplication
    from services.dispute.domain import OrderFacts
    from services.dispute.domain.values import Actor, Role
    from services.dispute.settings import Settings
    from shared.money import Money

    settings = Settings(_env_file=None, environment="test", service_token=SERVICE_TOKEN,
                        database_url=stack.database_url, db_schema=stack.schema,
                        threads=2)  # type: ignore[call-arg]  # fmt: skip
    app = DisputeApplication(env=settings.persistence_env())
    try:
        facts = OrderFacts.parse(buyer_id="b-poison", seller_id="s\x00poison",
                                 amount=Money(5000, "USD"), payment_method="card",
                                 placed_at=datetime.now(UTC) - timedelta(days=3))  # fmt: skip
        app.put_order(Actor(Role.SERVICE, "orders"), "poison-1", "o-poison", facts)
        app.open_dispute(Actor(Role.BUYER, "b-poison"), "poison-2", order_ref="o-poison",
                         reason="not_received", requested_resolution="refund_only",
                         amount=Money(5000, "USD"), description="x", evidence=[])  # fmt: skip
    finally:
        app.close()
    after = new_dispute(gw, stack, buyer="b-after")  # written after the poison
    agent = auth(stack, "agent", "a1")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = gw.get("/v1/disputes", params={"buyer_id": "b-after"}, headers=agent).json()
        ready = gw.get("/readyz").json()
        if listed["data"] and ready.get("quarantined_events", 0) >= 1:
            break
        time.sleep(0.2)
    assert [d["id"] for d in listed["data"]] == [after["id"]]
    assert ready["status"] == "ok" and ready["quarantined_events"] >= 1
    for name, process in stack.processes.items():
        assert process.poll() is None, f"the {name} died"
    assert "quarantined the event" in (stack.logs / "projector.log").read_text(errors="replace")


# Last: it moves the sandbox clock decades ahead ------------------------------------


def test_the_sandbox_clock_cannot_overflow_or_brick(gw: httpx.Client, stack: Stack) -> None:
    agent = auth(stack, "agent", "a1")
    for advance in ("P3000000D", "P99999D", "PT9999999999999H", "P-1D", "P1Y", "", "P"):
        answer = gw.post("/v1/sandbox/clock", json={"advance": advance}, headers=agent)
        assert "advance" in fields(problem(answer, 422, "invalid_input")), advance
    # Towards 2100 in the largest steps the contract allows, then one too many.
    refused = None
    for _ in range(5):
        answer = gw.post("/v1/sandbox/clock", json={"advance": "P9999D"}, headers=agent)
        if answer.status_code != 200:
            refused = answer
            break
    assert refused is not None
    assert {e["rule"] for e in problem(refused, 422)["errors"]} == {"clock_range"}
    # Still usable: a small step moves it.
    assert gw.post("/v1/sandbox/clock", json={"advance": "PT1M"}, headers=agent).status_code == 200
