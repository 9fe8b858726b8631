"""The public REST gateway: the only public entry to the dispute service.

`create_app(settings)` wires everything; nothing is done at import time. The upstream
client and the rate limiter live for the app's lifespan.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from shared import observability
from shared.contract import PROBLEM_MEDIA_TYPE, Health
from shared.request_id import RequestIdMiddleware

from . import problems
from .authorization import PathGuard
from .edges import HeaderLimits, SecurityHeaders, dashboard_csp
from .forwarding import Forwarder, make_client
from .ratelimit import make_rate_limiter
from .routes import public_router
from .settings import GatewaySettings

log = logging.getLogger("services.gateway")

DESCRIPTION = """\
The public API of the buyer-protection dispute service.

Call it with `Authorization: Bearer <JWT>` (HS256; claims `sub`, `role`, `exp`).
Money is `{"amount": 1999, "currency": "USD"}` (minor units, ISO 4217). Times are RFC 3339
in UTC. Errors are RFC 9457 problem details (`application/problem+json`) whose `type` is
`https://disputes.internal/problems/<code>`. Codes: invalid_path, incomplete_body (400),
unauthenticated (401), role_not_permitted (403), not_found, order_not_found,
dispute_not_found, unknown_action (404), method_not_allowed (405, with `Allow`),
request_timeout (408), action_not_allowed, dispute_exists, order_facts_conflict,
extension_refused, order_charged_back, chargeback_exists, too_many_webhooks,
checkpoint_invalid, concurrent_update, idempotency_in_progress (409), version_mismatch
(412), payload_too_large (413), unsupported_media_type (415), invalid_input,
protection_ended, reason_not_covered, order_shipped, idempotency_key_reused (422: the same
key with another method, path or body), rate_limited (429), headers_too_large (431),
internal_error (500), unavailable, upstream_unavailable (503), upstream_timeout (504).

Every response carries `X-Request-ID` (yours, or a new one); the events a request causes
record it. Commands answer with the dispute and its `ETag`; send `If-Match` to act only on
the version you saw, and `Idempotency-Key` to retry a POST safely.
"""


def create_app(settings: GatewaySettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = make_client(settings)
        limiter = make_rate_limiter(settings.redis_url)
        app.state.forwarder = Forwarder(settings, client, limiter)
        try:
            yield
        finally:
            await limiter.close()
            await client.close()

    # Swagger UI at /docs and ReDoc at /redoc from the pinned fastapi-offline package's
    # own copies (under /docs-assets): no CDN, so they work offline.
    app = FastAPIOffline(
        title="Disputes API",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url="/redoc",
        static_url="/docs-assets",
    )
    problems.install(app)
    app.include_router(public_router())

    @app.get("/healthz", response_model=Health, tags=["meta"])
    async def healthz() -> Health:
        """The gateway is up."""
        return Health(status="ok")

    @app.get(
        "/readyz",
        response_model=Health,
        tags=["meta"],
        responses={503: {"model": Health, "description": "a dependency is unreachable"}},
    )
    async def readyz() -> Response:
        """The dispute service, and through it the database, answer; and how many stored
        events its readers set aside (quarantined_events)."""
        ready, quarantined = await app.state.forwarder.ready()
        health = Health(status="ok" if ready else "unavailable", quarantined_events=quarantined)
        return Response(
            health.model_dump_json(exclude_none=True),
            status_code=200 if ready else 503,
            media_type="application/json",
        )

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard() -> HTMLResponse:
        """The operations dashboard: a static page whose script calls /v1 with the token
        the viewer enters once per browser session, so loading it needs no token."""
        # Its Content-Security-Policy comes from SecurityHeaders (edges.dashboard_csp).
        return HTMLResponse(dashboard_html(), headers={"Cache-Control": "no-cache"})

    # Its script and stylesheet, vendored in the package: no CDN, no build step.
    app.mount(
        "/dashboard/assets",
        StaticFiles(packages=[(__package__, "dashboard")]),
        name="dashboard-assets",
    )

    app.openapi = lambda: public_openapi(app)  # type: ignore[method-assign]
    observability.instrument(app, "gateway", originate_traces=True)
    app.add_middleware(PathGuard)  # inside the request id, so its problems carry one
    app.add_middleware(
        HeaderLimits,
        max_header_bytes=settings.max_header_bytes,
        max_token_bytes=settings.max_token_bytes,
    )
    app.add_middleware(SecurityHeaders, dashboard_policy=dashboard_csp(dashboard_html()))
    app.add_middleware(RequestIdMiddleware)
    return app


def _not_nullable(parameter: dict[str, Any]) -> None:
    """A query, path or header parameter is absent or a value, never JSON null: FastAPI
    writes `anyOf: [X, null]` for an optional one, which clients (and schemathesis)
    would send as the text "null"."""
    schema = parameter.get("schema", {})
    options = schema.get("anyOf")
    if isinstance(options, list):
        values = [o for o in options if o.get("type") != "null"]
        if len(values) == 1 and len(values) < len(options):
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            parameter["schema"] = {**values[0], **rest}


@cache
def dashboard_html() -> str:
    """The dashboard page, package data next to this module."""
    page = resources.files(__package__).joinpath("dashboard", "index.html")
    return page.read_text(encoding="utf-8")


def public_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with every problem served as application/problem+json and
    FastAPI's own validation-error shape replaced by the contract's Problem."""
    if app.openapi_schema is not None:
        return app.openapi_schema
    document = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                _not_nullable(parameter)
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                schema = content.get("application/json", {}).get("schema", {})
                is_problem = PROBLEM_MEDIA_TYPE in content or schema.get("$ref", "").endswith(
                    "/HTTPValidationError"
                )
                if is_problem and status != "200":
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": problem_ref}}
                    if status == "422" and "Validation" in response.get("description", ""):
                        response["description"] = "invalid input, each bad field listed"
    schemas = document["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    app.openapi_schema = document
    return document
