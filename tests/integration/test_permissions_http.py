"""The dispute service enforces the permission table itself (the sandbox clock included),
whatever the gateway in front of it checked; a 405 names every method of the path."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from services.gateway.app import create_app

from .gateway_servers import Upstream, recording_upstream, serve
from .http_support import Api, running_service
from .test_gateway import ROLES, ROUTE_ROLES, bearer, settings, token


@pytest.fixture
def api(backend: dict[str, str]) -> Iterator[Api]:
    with running_service(backend, sandbox=True) as service:
        yield service


def test_the_service_refuses_every_route_a_role_may_not_call(api: Api) -> None:
    wrong = []
    for (method, target), allowed in ROUTE_ROLES.items():
        for role in ROLES:
            body = {"probe": True} if method != "GET" else None
            answer = api.call(method, target, role, f"{role}-1", body)
            refused = answer.status_code == 403
            if refused:
                assert answer.json()["type"].endswith("/role_not_permitted"), answer.text
            if refused == (role in allowed):
                wrong.append((role, method, target, answer.status_code))
    assert wrong == []


def test_the_sandbox_clock_moves_only_for_its_roles(api: Api) -> None:
    for role in ("buyer", "seller", "auditor"):
        answer = api.call("POST", "/v1/sandbox/clock", role, "x1", {"advance": "P1D"})
        assert answer.status_code == 403, answer.text
    moved = api.call("POST", "/v1/sandbox/clock", "agent", "a1", {"advance": "PT1H"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["offset_seconds"] > 3500


def test_a_405_lists_every_method_of_the_path(api: Api) -> None:
    answer = api.call("DELETE", "/v1/orders/o-1", "service", "orders")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, PUT"
    assert answer.json()["type"].endswith("/method_not_allowed")


# The gateway: an early check on the path it forwards ---------------------------------


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    with recording_upstream() as server:
        yield server


@pytest.fixture(scope="module")
def gateway_url(upstream: Upstream) -> Iterator[str]:
    with serve(create_app(settings(upstream.url))) as url:
        yield url


def raw_get(base_url: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    """A request whose path goes out exactly as written (no client-side normalising)."""
    host, port = base_url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest("GET", path, skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    finally:
        connection.close()


@pytest.mark.parametrize(
    "path",
    [
        "/v1/disputes/../events",
        "/v1/disputes/%2e%2e/events",
        "/v1/disputes/%2E./events",
        "/v1/disputes/./d-1",
        "/v1/orders/a%2Fb",
        "/v1/orders/a%2fb",
        "/v1/orders/a%5Cb",
        "/v1/orders/a\\b",
    ],
)
def test_the_gateway_refuses_dot_segments_and_encoded_slashes(
    gateway_url: str, upstream: Upstream, path: str
) -> None:
    upstream.received.clear()
    status, problem = raw_get(gateway_url, path, bearer(token("buyer", "b1")))
    assert status == 400, problem
    assert problem["type"].endswith("/invalid_path")
    assert problem["request_id"]
    assert upstream.received == []


def test_the_gateway_checks_the_route_it_forwards(gateway_url: str, upstream: Upstream) -> None:
    upstream.received.clear()
    status, _ = raw_get(gateway_url, "/v1/disputes/d-1/events", bearer(token("buyer", "b1")))
    assert status == 200
    (seen,) = upstream.received
    assert seen.path == "/v1/disputes/d-1/events"
    # The feed itself is not a buyer's, however the path is spelled.
    status, problem = raw_get(gateway_url, "/v1/events", bearer(token("buyer", "b1")))
    assert status == 403, problem


def test_a_405_at_the_gateway_lists_every_method(gateway_url: str) -> None:
    with httpx.Client(base_url=gateway_url) as client:
        answer = client.delete("/v1/orders/o-1", headers=bearer(token()))
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, PUT"
