"""The public gateway in front of a recording upstream: authentication, role-level
authorization, limits, request ids, failures of the dispute service, OpenAPI."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from pydantic import SecretStr, ValidationError

from services.gateway.app import create_app
from services.gateway.auth import mint_token
from services.gateway.problems import GATEWAY_PROBLEMS
from services.gateway.settings import DEV_JWT_SECRET, GatewaySettings
from services.gateway.tokens import main as tokens_main
from shared.contract import ACTION_BODIES, PROBLEM_BASE, PROBLEM_MEDIA_TYPE

from .gateway_servers import Upstream, free_port, recording_upstream, serve

SECRET = "gateway-test-secret-0123456789-abcdefgh"
SERVICE_TOKEN = "gateway-test-service-token-0123"
ROLES = ("buyer", "seller", "agent", "service", "auditor")
EVERYONE = frozenset(ROLES)


def settings(upstream_url: str, **overrides: Any) -> GatewaySettings:
    base: dict[str, Any] = {
        "environment": "test",
        "jwt_secret": SECRET,
        "service_token": SERVICE_TOKEN,
        "upstream_url": upstream_url,
        "rate_limit": "10000/second",
        "role_rate_limits": {"service": "10000/second"},
        "unauthenticated_rate_limit": "10000/second",
        "redis_url": None,
    }
    return GatewaySettings(_env_file=None, **{**base, **overrides})  # type: ignore[call-arg]


def token(role: str | None = "buyer", sub: str | None = "buyer-1", **claims: Any) -> str:
    payload = {"sub": sub, "role": role, "exp": int(time.time()) + 600, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, SECRET, "HS256")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM_BASE + code
    assert body["status"] == status
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return body


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with recording_upstream() as server:
        yield server


@pytest.fixture
def gateway(upstream: Upstream) -> Iterator[httpx.Client]:
    with serve(create_app(settings(upstream.url))) as url, httpx.Client(base_url=url) as client:
        yield client


# Authentication --------------------------------------------------------------------


class TestAuthentication:
    def test_forwards_a_valid_token_as_the_principal(
        self, gateway: httpx.Client, upstream: Upstream
    ) -> None:
        response = gateway.get("/v1/disputes/d-1", headers=bearer(token("seller", "s-9")))
        assert response.status_code == 200
        (seen,) = upstream.received
        assert seen.headers["X-Principal-Role"] == "seller"
        assert seen.headers["X-Principal-Id"] == "s-9"
        assert seen.headers["X-Internal-Token"] == SERVICE_TOKEN

    @pytest.mark.parametrize(
        "authorization",
        [None, "", "Bearer", "Basic dXNlcjpwYXNz", "Token abc", "Bearer a b"],
    )
    def test_refuses_a_missing_or_malformed_header(
        self, gateway: httpx.Client, upstream: Upstream, authorization: str | None
    ) -> None:
        headers = {} if authorization is None else {"Authorization": authorization}
        response = gateway.get("/v1/disputes/d-1", headers=headers)
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert upstream.received == []

    def test_refuses_the_none_algorithm(self, gateway: httpx.Client, upstream: Upstream) -> None:
        claims = {"sub": "b-1", "role": "buyer", "exp": int(time.time()) + 600}
        unsigned = jwt.encode(claims, None, algorithm="none")
        assert_problem(gateway.get("/v1/disputes/d-1", headers=bearer(unsigned)), 401,
                       "unauthenticated")  # fmt: skip
        assert upstream.received == []

    def test_refuses_a_token_signed_with_another_key(self, gateway: httpx.Client) -> None:
        claims = {"sub": "b-1", "role": "buyer", "exp": int(time.time()) + 600}
        forged = jwt.encode(claims, "another-key-of-enough-length-0123456789", "HS256")
        body = assert_problem(
            gateway.get("/v1/disputes/d-1", headers=bearer(forged)), 401, "unauthenticated"
        )
        assert "signature" in body["detail"]

    def test_refuses_another_algorithm_even_with_the_right_key(self, gateway: httpx.Client) -> None:
        claims = {"sub": "b-1", "role": "buyer", "exp": int(time.time()) + 600}
        other = jwt.encode(claims, SECRET + "-longer-for-hs512-" * 4, "HS512")
        assert_problem(
            gateway.get("/v1/disputes/d-1", headers=bearer(other)), 401, "unauthenticated"
        )

    def test_refuses_an_expired_token(self, gateway: httpx.Client) -> None:
        expired = token(exp=int(time.time()) - 60)
        body = assert_problem(
            gateway.get("/v1/disputes/d-1", headers=bearer(expired)), 401, "unauthenticated"
        )
        assert "expired" in body["detail"]

    @pytest.mark.parametrize("claim", ["exp", "sub", "role"])
    def test_refuses_a_token_missing_a_required_claim(
        self, gateway: httpx.Client, claim: str
    ) -> None:
        incomplete = token(**{claim: None})
        body = assert_problem(
            gateway.get("/v1/disputes/d-1", headers=bearer(incomplete)), 401, "unauthenticated"
        )
        assert claim in body["detail"]

    @pytest.mark.parametrize("role", ["admin", "system", "BUYER", ""])
    def test_refuses_an_unknown_role(self, gateway: httpx.Client, role: str) -> None:
        assert_problem(
            gateway.get("/v1/disputes/d-1", headers=bearer(token(role=role))),
            401,
            "unauthenticated",
        )

    def test_refuses_a_principal_id_that_cannot_travel_in_a_header(
        self, gateway: httpx.Client
    ) -> None:
        assert_problem(
            gateway.get("/v1/disputes/d-1", headers=bearer(token(sub="a b\nc"))),
            401,
            "unauthenticated",
        )

    def test_refuses_garbage(self, gateway: httpx.Client) -> None:
        assert_problem(
            gateway.get("/v1/disputes/d-1", headers=bearer("not.a.jwt")), 401, "unauthenticated"
        )


class TestIssuerAndAudience:
    @pytest.fixture
    def strict_gateway(self, upstream: Upstream) -> Iterator[httpx.Client]:
        app = create_app(settings(upstream.url, jwt_issuer="idp", jwt_audience="disputes"))
        with serve(app) as url, httpx.Client(base_url=url) as client:
            yield client

    @pytest.mark.parametrize(
        ("claims", "status"),
        [
            ({"iss": "idp", "aud": "disputes"}, 200),
            ({"aud": "disputes"}, 401),
            ({"iss": "idp"}, 401),
            ({"iss": "evil", "aud": "disputes"}, 401),
            ({"iss": "idp", "aud": "elsewhere"}, 401),
        ],
    )
    def test_checks_the_configured_issuer_and_audience(
        self, strict_gateway: httpx.Client, claims: dict[str, str], status: int
    ) -> None:
        response = strict_gateway.get("/v1/state-machine", headers=bearer(token(**claims)))
        assert response.status_code == status, response.text

    def test_minted_tokens_carry_the_configured_issuer_and_audience(
        self, strict_gateway: httpx.Client, upstream: Upstream
    ) -> None:
        config = settings(upstream.url, jwt_issuer="idp", jwt_audience="disputes")
        minted = mint_token(config, role="agent", sub="agent-7")
        assert strict_gateway.get("/v1/state-machine", headers=bearer(minted)).status_code == 200


# Role-level authorization ----------------------------------------------------------

# The oracle is api.md, written out here: the gateway must agree with it.
ACTION_ROLES: dict[str, frozenset[str]] = {
    "accept": frozenset({"seller"}),
    "reject": frozenset({"seller"}),
    "offer": frozenset({"seller"}),
    "accept-offer": frozenset({"buyer"}),
    "revise": frozenset({"buyer"}),
    "escalate": frozenset({"buyer"}),
    "withdraw": frozenset({"buyer"}),
    "evidence": frozenset({"buyer", "seller"}),
    "messages": frozenset({"buyer", "seller", "agent"}),
    "request-info": frozenset({"agent"}),
    "rule": frozenset({"agent"}),
    "appeal": frozenset({"buyer", "seller"}),
    "ship-return": frozenset({"buyer"}),
    "return-delivered": frozenset({"service"}),
    "confirm-return": frozenset({"seller"}),
    "contest-return": frozenset({"seller"}),
    "refund-paid": frozenset({"service"}),
    "refund-failed": frozenset({"service"}),
    "extend-deadline": frozenset({"agent"}),
}
ROUTE_ROLES: dict[tuple[str, str], frozenset[str]] = {
    ("PUT", "/v1/orders/o-1"): frozenset({"service"}),
    ("POST", "/v1/orders/o-1/protection-extensions"): frozenset({"seller"}),
    ("POST", "/v1/orders/o-1/chargebacks"): frozenset({"service"}),
    ("GET", "/v1/orders/o-1"): EVERYONE,
    ("POST", "/v1/disputes"): frozenset({"buyer"}),
    ("GET", "/v1/disputes?state=negotiating&limit=5"): EVERYONE,
    ("GET", "/v1/disputes/d-1"): EVERYONE,
    ("GET", "/v1/disputes/d-1/events"): EVERYONE,
    ("GET", "/v1/disputes/d-1/verification"): EVERYONE,
    ("GET", "/v1/events?after=0&limit=10"): frozenset({"service", "agent", "auditor"}),
    ("GET", "/v1/state-machine"): EVERYONE,
    ("GET", "/v1/stats/counts"): frozenset({"agent", "auditor", "service"}),
    ("POST", "/v1/sandbox/clock"): frozenset({"agent", "service"}),
    ("GET", "/v1/sandbox/clock"): EVERYONE,
    ("POST", "/v1/webhooks"): frozenset({"service"}),
    ("GET", "/v1/webhooks"): frozenset({"service"}),
    ("GET", "/v1/webhooks/w-1"): frozenset({"service"}),
    ("DELETE", "/v1/webhooks/w-1"): frozenset({"service"}),
    ("GET", "/v1/webhooks/w-1/deliveries?limit=5"): frozenset({"service"}),
    ("POST", "/v1/webhooks/w-1/replay"): frozenset({"service"}),
    **{("POST", f"/v1/disputes/d-1/{a}"): roles for a, roles in ACTION_ROLES.items()},
}
MATRIX = [
    pytest.param(method, target, role, role in allowed, id=f"{role}-{method}-{target}")
    for (method, target), allowed in ROUTE_ROLES.items()
    for role in ROLES
]


def test_the_matrix_covers_every_action_of_the_contract() -> None:
    assert set(ACTION_ROLES) == set(ACTION_BODIES)


def test_an_auditor_may_write_nothing() -> None:
    writes = [roles for (method, _), roles in ROUTE_ROLES.items() if method != "GET"]
    assert all("auditor" not in roles for roles in writes)


@pytest.fixture(scope="module")
def shared_upstream() -> Iterator[Upstream]:
    with recording_upstream() as server:
        yield server


@pytest.fixture(scope="module")
def shared_gateway(shared_upstream: Upstream) -> Iterator[httpx.Client]:
    app = create_app(settings(shared_upstream.url))
    with serve(app) as url, httpx.Client(base_url=url) as client:
        yield client


@pytest.mark.parametrize(("method", "target", "role", "permitted"), MATRIX)
def test_role_level_authorization(
    shared_gateway: httpx.Client,
    shared_upstream: Upstream,
    method: str,
    target: str,
    role: str,
    permitted: bool,
) -> None:
    shared_upstream.received.clear()
    body = b'{"probe": true}' if method != "GET" else None
    response = shared_gateway.request(
        method,
        target,
        content=body,
        headers={**bearer(token(role, f"{role}-1")), "Content-Type": "application/json"},
    )
    if permitted:
        assert response.status_code == 200, response.text
        (seen,) = shared_upstream.received
        assert (seen.method, seen.path) == (method, target)
        assert seen.headers["X-Principal-Role"] == role
        assert seen.body == (body or b"")
    else:
        problem = assert_problem(response, 403, "role_not_permitted")
        assert role in problem["detail"]
        assert shared_upstream.received == []


def test_an_unknown_action_is_not_forwarded(
    shared_gateway: httpx.Client, shared_upstream: Upstream
) -> None:
    shared_upstream.received.clear()
    response = shared_gateway.post("/v1/disputes/d-1/reopen", headers=bearer(token()))
    assert_problem(response, 404, "not_found")
    assert shared_upstream.received == []


def test_a_wrong_method_is_a_problem(shared_gateway: httpx.Client) -> None:
    response = shared_gateway.delete("/v1/disputes/d-1", headers=bearer(token()))
    assert_problem(response, 405, "method_not_allowed")


# Forwarding ------------------------------------------------------------------------


class TestForwarding:
    def test_passes_the_contract_headers_and_strips_internal_ones(
        self, gateway: httpx.Client, upstream: Upstream
    ) -> None:
        response = gateway.post(
            "/v1/disputes/d-1/withdraw?x=1&y=two",
            content=b'{"reason": "found it"}',
            headers={
                **bearer(token("buyer", "buyer-1")),
                "Content-Type": "application/json",
                "Idempotency-Key": "key-1",
                "If-Match": '"2"',
                "X-Internal-Token": "forged",
                "X-Principal-Role": "agent",
                "X-Principal-Id": "agent-1",
                "X-Principal-Extra": "x",
                "Cookie": "session=1",
            },
        )
        assert response.status_code == 200
        (seen,) = upstream.received
        assert seen.path == "/v1/disputes/d-1/withdraw?x=1&y=two"
        assert seen.body == b'{"reason": "found it"}'
        assert seen.headers["Idempotency-Key"] == "key-1"
        assert seen.headers["If-Match"] == '"2"'
        assert seen.headers["Content-Type"] == "application/json"
        assert seen.headers["X-Internal-Token"] == SERVICE_TOKEN
        assert (seen.headers["X-Principal-Role"], seen.headers["X-Principal-Id"]) == (
            "buyer",
            "buyer-1",
        )
        assert "X-Principal-Extra" not in seen.headers
        assert "Cookie" not in seen.headers

    def test_relays_the_answer_without_leaking_the_internal_host(
        self, gateway: httpx.Client
    ) -> None:
        response = gateway.get("/v1/disputes/d-1", headers=bearer(token()))
        assert response.json() == {"method": "GET", "path": "/v1/disputes/d-1"}
        assert response.headers["etag"] == '"3"'
        assert response.headers["location"] == "/v1/disputes/d-1"
        assert response.headers["content-type"] == "application/json"
        assert "x-internal-detail" not in response.headers

    def test_keeps_percent_encoded_path_segments(
        self, gateway: httpx.Client, upstream: Upstream
    ) -> None:
        gateway.get("/v1/orders/ord%201%3Ax", headers=bearer(token()))
        (seen,) = upstream.received
        assert seen.path == "/v1/orders/ord%201%3Ax"


class TestBodySizeLimit:
    @pytest.fixture
    def small_gateway(self, upstream: Upstream) -> Iterator[httpx.Client]:
        app = create_app(settings(upstream.url, max_body_bytes=1024))
        with serve(app) as url, httpx.Client(base_url=url) as client:
            yield client

    def test_refuses_a_body_over_the_limit(
        self, small_gateway: httpx.Client, upstream: Upstream
    ) -> None:
        response = small_gateway.post("/v1/disputes", content=b"x" * 1025, headers=bearer(token()))
        assert_problem(response, 413, "payload_too_large")
        assert upstream.received == []

    def test_refuses_a_chunked_body_over_the_limit(
        self, small_gateway: httpx.Client, upstream: Upstream
    ) -> None:
        def chunks() -> Iterator[bytes]:
            for _ in range(5):
                yield b"y" * 300

        response = small_gateway.post("/v1/disputes", content=chunks(), headers=bearer(token()))
        assert_problem(response, 413, "payload_too_large")
        assert upstream.received == []

    def test_a_body_that_does_not_arrive_in_time_is_refused_and_not_forwarded(
        self, upstream: Upstream
    ) -> None:
        app = create_app(settings(upstream.url, body_timeout_seconds=0.5))
        with serve(app) as url:
            host, port = url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port)), timeout=10) as raw:
                raw.sendall(
                    b"PUT /v1/orders/o-slow HTTP/1.1\r\nHost: x\r\n"
                    + f"Authorization: Bearer {token(role='service')}\r\n".encode()
                    + b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":'
                )
                answer = raw.recv(65536).decode("latin-1")
        assert answer.startswith("HTTP/1.1 408"), answer
        assert "request_timeout" in answer
        assert upstream.received == []

    def test_a_client_gone_mid_body_is_no_server_error(self, upstream: Upstream) -> None:
        app = create_app(settings(upstream.url))
        with serve(app) as url, httpx.Client(base_url=url) as client:
            host, port = url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port)), timeout=10) as raw:
                raw.sendall(
                    b"PUT /v1/orders/o-gone HTTP/1.1\r\nHost: x\r\n"
                    + f"Authorization: Bearer {token(role='service')}\r\n".encode()
                    + b"Content-Length: 100\r\n\r\n{"
                )
                time.sleep(0.3)
            time.sleep(0.5)
            metrics = client.get("/metrics").text
        server_errors = [
            line
            for line in metrics.splitlines()
            if line.startswith("disputes_http_requests_total") and 'status="500"' in line
        ]
        assert server_errors == []
        assert 'status="400"' in metrics
        assert upstream.received == []

    def test_forwards_a_body_at_the_limit(
        self, small_gateway: httpx.Client, upstream: Upstream
    ) -> None:
        response = small_gateway.post("/v1/disputes", content=b"z" * 1024, headers=bearer(token()))
        assert response.status_code == 200
        assert upstream.received[0].body == b"z" * 1024


class TestRequestId:
    def test_makes_one_when_the_caller_sends_none(
        self, gateway: httpx.Client, upstream: Upstream
    ) -> None:
        response = gateway.get("/v1/disputes/d-1", headers=bearer(token()))
        made = response.headers["x-request-id"]
        assert uuid.UUID(made)
        assert upstream.received[0].headers["X-Request-ID"] == made

    def test_passes_on_and_returns_the_callers(
        self, gateway: httpx.Client, upstream: Upstream
    ) -> None:
        response = gateway.get(
            "/v1/disputes/d-1", headers={**bearer(token()), "X-Request-ID": "trace-42.a:b"}
        )
        assert response.headers["x-request-id"] == "trace-42.a:b"
        assert upstream.received[0].headers["X-Request-ID"] == "trace-42.a:b"
        assert response.headers.get_list("x-request-id") == ["trace-42.a:b"]

    def test_replaces_one_that_is_not_a_plain_token(self, gateway: httpx.Client) -> None:
        response = gateway.get(
            "/v1/disputes/d-1", headers={**bearer(token()), "X-Request-ID": "a b <script>"}
        )
        assert uuid.UUID(response.headers["x-request-id"])

    def test_is_on_the_gateways_own_refusals(self, gateway: httpx.Client) -> None:
        response = gateway.get("/v1/disputes/d-1", headers={"X-Request-ID": "refused-1"})
        assert response.status_code == 401
        assert response.headers["x-request-id"] == "refused-1"
        assert response.json()["request_id"] == "refused-1"


class TestRateLimit:
    @pytest.fixture
    def limited_gateway(self, upstream: Upstream) -> Iterator[httpx.Client]:
        app = create_app(settings(upstream.url, rate_limit="3/minute"))
        with serve(app) as url, httpx.Client(base_url=url) as client:
            yield client

    def test_answers_429_with_retry_after_over_the_limit(
        self, limited_gateway: httpx.Client, upstream: Upstream
    ) -> None:
        headers = bearer(token("buyer", "busy-buyer"))
        assert [limited_gateway.get("/v1/state-machine", headers=headers).status_code
                for _ in range(3)] == [200, 200, 200]  # fmt: skip
        response = limited_gateway.get("/v1/state-machine", headers=headers)
        assert_problem(response, 429, "rate_limited")
        assert 1 <= int(response.headers["retry-after"]) <= 60
        assert len(upstream.received) == 3

    def test_counts_each_principal_on_its_own(self, limited_gateway: httpx.Client) -> None:
        for _ in range(4):
            limited_gateway.get("/v1/state-machine", headers=bearer(token("buyer", "busy")))
        calm = limited_gateway.get("/v1/state-machine", headers=bearer(token("buyer", "calm")))
        assert calm.status_code == 200


def _redis_problem(url: str) -> str | None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).close()
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, OSError) as exc:
        return f"Redis unreachable at {url}: {exc}"
    return None


def test_gateways_sharing_redis_share_the_count(upstream: Upstream) -> None:
    url = "redis://127.0.0.1:6379/15"
    if problem := _redis_problem(url):
        pytest.skip(problem)
    config = settings(upstream.url, rate_limit="3/minute", redis_url=url)
    headers = bearer(token("agent", f"agent-{uuid.uuid4().hex}"))
    with serve(create_app(config)) as first, serve(create_app(config)) as second:
        statuses = [httpx.get(base + "/v1/state-machine", headers=headers).status_code
                    for base in (first, second, first, second)]  # fmt: skip
    assert statuses == [200, 200, 200, 429]


# The dispute service down, slow, back ---------------------------------------------


class TestUpstreamFailures:
    def test_answers_503_when_the_service_is_unreachable_and_recovers(self) -> None:
        port = free_port()  # nothing listens here yet
        app = create_app(settings(f"http://127.0.0.1:{port}"))
        with serve(app) as url, httpx.Client(base_url=url) as client:
            down = client.get("/v1/disputes/d-1", headers=bearer(token()))
            assert_problem(down, 503, "upstream_unavailable")
            assert down.headers["retry-after"] == "1"
            assert client.get("/readyz").status_code == 503
            assert client.get("/healthz").status_code == 200
            with recording_upstream(port):
                back = client.get("/v1/disputes/d-1", headers=bearer(token()))
                assert back.status_code == 200
                assert client.get("/readyz").status_code == 200

    def test_answers_504_when_the_service_is_too_slow(self, upstream: Upstream) -> None:
        upstream.delay_seconds = 30.0  # released when the test ends
        app = create_app(settings(upstream.url, upstream_timeout_seconds=0.2))
        with serve(app) as url, httpx.Client(base_url=url) as client:
            response = client.post(
                "/v1/disputes/d-1/withdraw", content=b"{}", headers=bearer(token())
            )
        body = assert_problem(response, 504, "upstream_timeout")
        assert "Idempotency-Key" in body["detail"]

    def test_readiness_follows_the_services(self, upstream: Upstream) -> None:
        upstream.ready_status = 503
        with serve(create_app(settings(upstream.url))) as url:
            assert httpx.get(url + "/readyz").json() == {"status": "unavailable"}
            upstream.ready_status = 200
            assert httpx.get(url + "/readyz").json() == {"status": "ok"}


# OpenAPI ---------------------------------------------------------------------------

PUBLIC_PATHS = {
    ("put", "/v1/orders/{order_id}"): "OrderPut",
    ("post", "/v1/orders/{order_id}/protection-extensions"): "ProtectionExtensionCreate",
    ("post", "/v1/orders/{order_id}/chargebacks"): "ChargebackCreate",
    ("get", "/v1/orders/{order_id}"): None,
    ("post", "/v1/disputes"): "DisputeCreate",
    ("get", "/v1/disputes"): None,
    ("get", "/v1/disputes/{dispute_id}"): None,
    ("get", "/v1/disputes/{dispute_id}/events"): None,
    ("get", "/v1/disputes/{dispute_id}/verification"): None,
    ("get", "/v1/events"): None,
    ("get", "/v1/state-machine"): None,
    ("post", "/v1/sandbox/clock"): "SandboxClockAdvance",
    ("get", "/v1/sandbox/clock"): None,
    ("post", "/v1/webhooks"): "WebhookCreate",
    ("get", "/v1/webhooks"): None,
    ("get", "/v1/webhooks/{webhook_id}"): None,
    ("delete", "/v1/webhooks/{webhook_id}"): None,
    ("get", "/v1/webhooks/{webhook_id}/deliveries"): None,
    ("post", "/v1/webhooks/{webhook_id}/replay"): "WebhookReplay",
    **{
        ("post", f"/v1/disputes/{{dispute_id}}/{action}"): model.__name__
        for action, model in ACTION_BODIES.items()
    },
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The OpenAPI document as a client fetches it (and /docs serves the UI)."""
    with serve(create_app(settings("http://127.0.0.1:9"))) as url:
        response = httpx.get(url + "/openapi.json")
        docs = httpx.get(url + "/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    openapi: dict[str, Any] = response.json()
    return openapi


class TestOpenApi:
    def test_describes_every_public_path_with_its_body(self, document: dict[str, Any]) -> None:
        for (method, path), body in PUBLIC_PATHS.items():
            operation = document["paths"][path][method]
            if body is None:
                continue
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            refs = [s.get("$ref", "") for s in schema.get("anyOf", [schema])]
            assert "#/components/schemas/" + body in refs, (method, path)

    def test_every_public_operation_needs_the_bearer_token(self, document: dict[str, Any]) -> None:
        schemes = document["components"]["securitySchemes"]
        ((name, scheme),) = schemes.items()
        assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == (
            "http",
            "bearer",
            "JWT",
        )
        for method, path in PUBLIC_PATHS:
            assert document["paths"][path][method]["security"] == [{name: []}]

    def test_problems_are_problem_details(self, document: dict[str, Any]) -> None:
        problem = document["components"]["schemas"]["Problem"]
        assert {"type", "title", "status", "detail"} <= set(problem["required"])
        for method, path in PUBLIC_PATHS:
            responses = document["paths"][path][method]["responses"]
            for status in ("401", "403", "429", "503", "504"):
                content = responses[status]["content"]
                assert list(content) == [PROBLEM_MEDIA_TYPE], (method, path, status)
                assert content[PROBLEM_MEDIA_TYPE]["schema"]["$ref"].endswith("/Problem")
        assert "HTTPValidationError" not in document["components"]["schemas"]

    def test_commands_document_their_refusals(self, document: dict[str, Any]) -> None:
        for (method, path), body in PUBLIC_PATHS.items():
            if body is not None:
                responses = document["paths"][path][method]["responses"]
                assert {"409", "413", "422"} <= set(responses), (method, path)
                if not path.startswith("/v1/webhooks"):  # no versions, so no If-Match
                    assert "412" in responses, (method, path)

    def test_names_every_problem_type_the_gateway_answers(self, document: dict[str, Any]) -> None:
        for code in GATEWAY_PROBLEMS:
            assert code in document["info"]["description"]

    def test_names_every_problem_type_the_domain_answers(self, document: dict[str, Any]) -> None:
        from services.dispute.domain import errors

        codes = {
            error.code
            for error in vars(errors).values()
            if isinstance(error, type) and issubclass(error, errors.DomainError)
        } - {errors.DomainError.code}
        missing = [c for c in sorted(codes) if c not in document["info"]["description"]]
        assert missing == []

    def test_describes_responses_by_the_contract_models(self, document: dict[str, Any]) -> None:
        ok = document["paths"]["/v1/disputes/{dispute_id}"]["get"]["responses"]["200"]
        assert ok["content"]["application/json"]["schema"]["$ref"].endswith("/Dispute")
        assert "ETag" in ok["headers"]
        created = document["paths"]["/v1/disputes"]["post"]["responses"]["201"]
        assert {"ETag", "Location"} <= set(created["headers"])


# Configuration and the token CLI -----------------------------------------------------


class TestSettings:
    def test_outside_development_the_secret_is_required(self) -> None:
        with pytest.raises(ValidationError, match="DISPUTES_JWT_SECRET must be set"):
            GatewaySettings(_env_file=None, environment="production", jwt_secret=SecretStr(""))  # type: ignore[call-arg]

    def test_the_secret_must_be_long_enough(self) -> None:
        with pytest.raises(ValidationError, match="at least 32 bytes"):
            GatewaySettings(_env_file=None, environment="test", jwt_secret=SecretStr("short"))  # type: ignore[call-arg]

    def test_the_development_secret_is_refused_outside_development(self) -> None:
        with pytest.raises(ValidationError, match="development default"):
            GatewaySettings(
                _env_file=None, environment="test", jwt_secret=SecretStr(DEV_JWT_SECRET)
            )  # type: ignore[call-arg]

    def test_production_needs_its_own_service_token(self) -> None:
        with pytest.raises(ValidationError, match="DISPUTES_SERVICE_TOKEN"):
            GatewaySettings(_env_file=None, environment="production", jwt_secret=SecretStr(SECRET))  # type: ignore[call-arg]

    def test_development_works_with_no_setup(self) -> None:
        config = GatewaySettings(
            _env_file=None, environment="development", jwt_secret=SecretStr("")
        )  # type: ignore[call-arg]
        assert config.jwt_key == DEV_JWT_SECRET

    @pytest.mark.parametrize("value", ["lots", "20/fortnight", ""])
    def test_a_bad_rate_limit_fails_fast(self, value: str) -> None:
        with pytest.raises(ValidationError, match="DISPUTES_RATE_LIMIT"):
            settings("http://127.0.0.1:9", rate_limit=value)


def test_the_token_cli_mints_what_the_gateway_accepts(
    gateway: httpx.Client, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DISPUTES_ENVIRONMENT", "test")
    monkeypatch.setenv("DISPUTES_JWT_SECRET", SECRET)
    monkeypatch.setenv("DISPUTES_SERVICE_TOKEN", SERVICE_TOKEN)
    assert tokens_main(["--role", "auditor", "--sub", "aud-1", "--ttl", "60"]) == 0
    minted = capsys.readouterr().out.strip()
    assert gateway.get("/v1/events", headers=bearer(minted)).status_code == 200
    assert gateway.post("/v1/disputes", headers=bearer(minted)).status_code == 403


def test_the_gateway_publishes_every_route_the_service_serves() -> None:
    """The gateway re-declares the service's routes for its OpenAPI document: a route
    (or a stats figure) added to one tier only would be unreachable or undocumented."""
    from services.dispute.api.app import create_app as create_service_app
    from services.dispute.settings import Settings

    def operations(app: Any) -> set[tuple[str, str]]:
        paths = app.openapi()["paths"]
        return {(method.upper(), path) for path, ops in paths.items() for method in ops}

    gateway = operations(create_app(settings("http://127.0.0.1:1")))
    assert gateway == operations(create_service_app(Settings()))
