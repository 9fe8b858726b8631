"""Forwarding a public request to the dispute service, after the gateway's own checks.

In order: who is calling (401), within their rate (429), may their role call this route
at all (403), is the body within the limit (413). Then the request goes to the dispute
service over one pooled client with the principal in internal headers, and its answer
comes back unchanged; an unreachable or slow service answers 503 or 504, never a hang.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

import aiohttp
import limits
from fastapi import Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect
from yarl import URL

from shared.contract import Health
from shared.trace_context import current_traceparent

from .auth import AuthenticationError, Principal, TokenCache, principal_from_header
from .problems import GatewayProblem, gateway_problem
from .ratelimit import RateLimiter, address_key, principal_key
from .settings import GatewaySettings

log = logging.getLogger("services.gateway")

# Caller headers passed on as they are; everything else (notably any X-Internal-Token or
# X-Principal-* a caller sends) is dropped.
FORWARDED_REQUEST_HEADERS = ("content-type", "accept", "idempotency-key", "if-match")
# The service's answer headers relayed to the caller.
RELAYED_RESPONSE_HEADERS = (
    "content-type",
    "etag",
    "location",
    "retry-after",
    "x-request-id",
    "cache-control",
    "idempotent-replayed",
)
RETRY_AFTER_UNAVAILABLE = "1"


def make_client(settings: GatewaySettings) -> aiohttp.ClientSession:
    """One pooled client per process (call it inside the running event loop).

    aiohttp rather than httpx: httpcore's pool scans every pooled connection on each
    request, which took a third of the gateway's CPU at 32 concurrent requests.
    """
    connector = aiohttp.TCPConnector(
        limit=settings.upstream_max_connections,
        limit_per_host=settings.upstream_max_connections,
        # Below uvicorn's 5 s keep-alive: the gateway drops an idle connection before the
        # service does, so a request is not sent down one the service is closing.
        keepalive_timeout=4,
        # Resolve the upstream name for every new connection, as httpx did: replicas behind
        # one name (compose's --scale) then share the connections, where a cached answer
        # would send all of them to the first address for its lifetime.
        use_dns_cache=False,
    )
    timeout = aiohttp.ClientTimeout(
        total=settings.upstream_timeout_seconds,
        connect=settings.upstream_connect_timeout_seconds,  # a pooled connection, or a new one
    )
    return aiohttp.ClientSession(
        base_url=settings.upstream_url,
        connector=connector,
        timeout=timeout,
        trust_env=False,  # internal traffic never goes through a proxy from the environment
        auto_decompress=False,
        # Only what the gateway chose to forward: no client-chosen defaults.
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
    )


class Forwarder:
    def __init__(
        self, settings: GatewaySettings, client: aiohttp.ClientSession, limiter: RateLimiter
    ) -> None:
        self.settings = settings
        self.client = client
        self.limiter = limiter
        self.tokens = TokenCache(settings)
        self._role_limits: dict[str, list[limits.RateLimitItem]] = {}

    async def __call__(self, request: Request, roles: frozenset[str]) -> Response:
        try:
            principal = self.authenticate(request)
        except GatewayProblem:
            # Without valid credentials: counted per client address, so guessing tokens
            # or flooding with bad ones is slowed down like any other caller.
            address = request.client.host if request.client else "unknown"
            await self.limit(
                address_key(address),
                self.settings.unauthenticated_limits,
                self.settings.unauthenticated_rate_limit,
                "this address without valid credentials",
            )
            raise
        await self.limit(
            principal_key(principal),
            self.role_limits(principal.role),
            self.settings.role_rate_limits.get(principal.role, self.settings.rate_limit),
            "this principal",
        )
        if principal.role not in roles:
            raise gateway_problem(
                "role_not_permitted",
                f"the role {principal.role!r} may not {request.method} {request.url.path}; "
                f"allowed: {', '.join(sorted(roles)) or 'none'}",
            )
        body = await self.read_body(request)
        return await self.forward(request, principal, body)

    def role_limits(self, role: str) -> list[limits.RateLimitItem]:
        """The role's limits, parsed once (the settings hold them as text)."""
        if role not in self._role_limits:
            self._role_limits[role] = self.settings.role_limits(role)
        return self._role_limits[role]

    async def limit(
        self, key: str, items: list[limits.RateLimitItem], described: str, whose: str
    ) -> None:
        retry_after = await self.limiter.retry_after(key, items)
        if retry_after is not None:
            raise gateway_problem(
                "rate_limited",
                f"more than {described} requests for {whose}; retry in {retry_after} s",
                {"Retry-After": str(retry_after)},
            )

    def authenticate(self, request: Request) -> Principal:
        try:
            return principal_from_header(
                request.headers.get("authorization"), self.settings, self.tokens
            )
        except AuthenticationError as exc:
            raise gateway_problem(
                "unauthenticated",
                str(exc),
                {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            ) from None

    async def read_body(self, request: Request) -> bytes:
        limit = self.settings.max_body_bytes
        too_large = gateway_problem(
            "payload_too_large", f"the request body may be at most {limit} bytes"
        )
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large
        chunks: list[bytes] = []

        async def receive() -> None:
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large
                chunks.append(chunk)

        timeout = self.settings.body_timeout_seconds
        try:
            await asyncio.wait_for(receive(), timeout)
        except TimeoutError:
            raise gateway_problem(
                "request_timeout", f"the request body did not arrive within {timeout:g} s"
            ) from None
        except ClientDisconnect:  # nobody is left to read the answer; nothing was sent on
            raise gateway_problem(
                "incomplete_body", "the client closed the connection before the body ended"
            ) from None
        return b"".join(chunks)

    async def forward(self, request: Request, principal: Principal, body: bytes) -> Response:
        headers = {
            name: value
            for name in FORWARDED_REQUEST_HEADERS
            if (value := request.headers.get(name)) is not None
        }
        headers["X-Internal-Token"] = self.settings.service_token.get_secret_value()
        headers["X-Principal-Role"] = principal.role
        headers["X-Principal-Id"] = principal.id
        headers["X-Request-ID"] = request.state.request_id
        if (traceparent := current_traceparent()) is not None:
            headers["traceparent"] = traceparent  # the gateway's span, or the caller's
        target = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
        if request.url.query:
            target += "?" + request.url.query
        try:
            status, content, answer_headers = await self.send(request.method, target, body, headers)
        except aiohttp.ConnectionTimeoutError as exc:  # no connection in time: nothing sent
            raise self.unavailable(exc) from None
        except TimeoutError:
            log.warning("dispute service timed out on %s %s", request.method, target)
            raise gateway_problem(
                "upstream_timeout",
                "the dispute service did not answer in time; a command may still have been "
                "applied: retry with the same Idempotency-Key",
            ) from None
        except aiohttp.ClientError as exc:
            raise self.unavailable(exc) from None
        return Response(
            content=content,
            status_code=status,
            headers=dict(relayed(answer_headers, self.settings.upstream_url)),
        )

    async def send(
        self, method: str, target: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, list[tuple[str, str]]]:
        """One request upstream. A failure to connect is retried once (nothing was sent,
        so that is safe for commands too); a slow or broken answer is not."""
        url = URL(target, encoded=True)  # as the caller sent it, not re-quoted
        for attempt in range(2):
            try:
                async with self.client.request(
                    method, url, data=body, headers=headers, allow_redirects=False
                ) as upstream:
                    content = await upstream.read()
                    return upstream.status, content, list(upstream.headers.items())
            except aiohttp.ClientConnectorError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    async def ready(self) -> tuple[bool, int | None]:
        """Whether the dispute service (and through it the database) answers /readyz, and
        the count of quarantined events it reports."""
        try:
            status, content, _ = await self.send("GET", "/readyz", b"", {})
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("not ready: %s", exc)
            return False, None
        try:
            quarantined = Health.model_validate_json(content).quarantined_events
        except ValueError:
            quarantined = None
        return status == 200, quarantined

    def unavailable(self, exc: Exception) -> Exception:
        log.warning("dispute service unavailable: %s", exc)
        return gateway_problem(
            "upstream_unavailable",
            "the dispute service cannot be reached; retry shortly",
            {"Retry-After": RETRY_AFTER_UNAVAILABLE},
        )


def relayed(headers: Iterable[tuple[str, str]], upstream_url: str) -> Iterable[tuple[str, str]]:
    for name, value in headers:
        lower = name.lower()
        if lower not in RELAYED_RESPONSE_HEADERS:
            continue
        if lower == "location" and value.startswith(upstream_url):
            value = value.removeprefix(upstream_url) or "/"  # never leak the internal host
        yield name, value
