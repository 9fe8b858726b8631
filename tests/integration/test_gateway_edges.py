"""The gateway's edges: rate limits without credentials (per address) and per role,
header and token size caps, bounded and typed token times, security headers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from services.gateway.app import create_app

from .gateway_servers import Upstream, recording_upstream, serve
from .test_gateway import SECRET, assert_problem, bearer, settings, token


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with recording_upstream() as server:
        yield server


def gateway_with(upstream: Upstream, **overrides: Any) -> Any:
    return serve(create_app(settings(upstream.url, **overrides)))


def test_requests_without_valid_credentials_are_limited_per_address(upstream: Upstream) -> None:
    limited_app = gateway_with(upstream, unauthenticated_rate_limit="3/minute")
    with limited_app as url, httpx.Client(base_url=url) as client:
        statuses = [client.get("/v1/state-machine").status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        limited = client.get("/v1/state-machine", headers=bearer("not-a-token"))
        assert_problem(limited, 429, "rate_limited")
        assert int(limited.headers["Retry-After"]) >= 1
        # A valid token is counted per principal, not per address: still served.
        assert client.get("/v1/state-machine", headers=bearer(token())).status_code == 200
    assert len(upstream.received) == 1


def test_the_service_role_has_its_own_higher_limit(upstream: Upstream) -> None:
    overrides = {"rate_limit": "2/minute", "role_rate_limits": {"service": "5/minute"}}
    with gateway_with(upstream, **overrides) as url, httpx.Client(base_url=url) as client:
        buyer = [
            client.get("/v1/state-machine", headers=bearer(token("buyer", "b1"))).status_code
            for _ in range(3)
        ]
        service = [
            client.get("/v1/state-machine", headers=bearer(token("service", "o1"))).status_code
            for _ in range(6)
        ]
    assert buyer == [200, 200, 429]
    assert service == [200] * 5 + [429]


def test_oversized_headers_answer_431_and_an_oversized_token_401(upstream: Upstream) -> None:
    with gateway_with(upstream) as url, httpx.Client(base_url=url) as client:
        padded = {"X-Padding": "a" * 20_000, **bearer(token())}
        big = client.get("/v1/state-machine", headers=padded)
        assert_problem(big, 431, "headers_too_large")
        long_token = client.get("/v1/state-machine", headers=bearer("a" * 5000))
        assert_problem(long_token, 401, "unauthenticated")
        assert "at most 4096 bytes" in long_token.json()["detail"]
    assert upstream.received == []


@pytest.mark.parametrize(
    "exp",
    [1e308, "9999999999", float(int(time.time()) + 600), int(time.time()) + 10 * 86400, True],
    ids=["huge-float", "numeric-string", "float", "too-far-ahead", "bool"],
)
def test_exp_must_be_whole_seconds_and_not_too_far_ahead(upstream: Upstream, exp: Any) -> None:
    signed = jwt.encode({"sub": "b1", "role": "buyer", "exp": exp}, SECRET, "HS256")
    with gateway_with(upstream) as url, httpx.Client(base_url=url) as client:
        answer = client.get("/v1/state-machine", headers=bearer(signed))
    assert_problem(answer, 401, "unauthenticated")


@pytest.mark.parametrize("sub", ["b1\n", "b1\r\n", "b\x00", "é", ""])
def test_a_sub_outside_the_id_characters_is_refused(upstream: Upstream, sub: str) -> None:
    signed = jwt.encode(
        {"sub": sub, "role": "buyer", "exp": int(time.time()) + 600}, SECRET, "HS256"
    )
    with gateway_with(upstream) as url, httpx.Client(base_url=url) as client:
        answer = client.get("/v1/state-machine", headers=bearer(signed))
    assert_problem(answer, 401, "unauthenticated")


def test_every_response_carries_the_security_headers(upstream: Upstream) -> None:
    with gateway_with(upstream) as url, httpx.Client(base_url=url) as client:
        answers = {
            "api": client.get("/v1/state-machine", headers=bearer(token())),
            "problem": client.get("/v1/state-machine"),
            "health": client.get("/healthz"),
            "openapi": client.get("/openapi.json"),
            "dashboard": client.get("/dashboard"),
            "docs": client.get("/docs"),
        }
    for name, answer in answers.items():
        assert answer.headers["x-content-type-options"] == "nosniff", name
        assert answer.headers["x-frame-options"] == "DENY", name
        assert "frame-ancestors 'none'" in answer.headers["content-security-policy"], name
    assert answers["api"].headers["content-security-policy"].startswith("default-src 'none'")
    dashboard = answers["dashboard"].headers["content-security-policy"]
    assert "script-src 'self'" in dashboard and "unsafe-inline" not in dashboard
    assert "connect-src 'self'" in dashboard
