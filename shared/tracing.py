"""W3C trace context for every request, and OpenTelemetry spans exported as OTLP when
`OTEL_EXPORTER_OTLP_ENDPOINT` is set.

- Without the variable (the default), no tracer is made and neither the SDK's tracing
  nor the exporter is imported: a request only has its `traceparent` read (or, at the
  gateway, made: like the request id) and passed on. That is a regular expression and,
  at most, 24 random bytes.
- With it, `setup_tracing("gateway")` installs the SDK's tracer provider with a batching
  OTLP/HTTP exporter (the standard `OTEL_*` variables configure it), and `TraceMiddleware`
  makes a server span per request, the child of the caller's `traceparent`.

Either way the request's `traceparent` (the service's own span, when tracing) is in
`current_traceparent()` while the request runs: the gateway sends it to the dispute
service, the dispute service records it on the events the request causes, and every log
line of the request has its `trace_id`.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.trace_context import current as _current
from shared.trace_context import current_traceparent

__all__ = ["TraceMiddleware", "current_traceparent", "enabled", "setup_tracing", "valid"]

log = logging.getLogger("shared.tracing")

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
# version 00: trace-id (32 hex, not all zero), parent-id (16 hex, not all zero), flags
_TRACEPARENT = re.compile(r"^00-(?!0{32})([0-9a-f]{32})-(?!0{16})([0-9a-f]{16})-([0-9a-f]{2})$")

_tracer: Any = None  # an OpenTelemetry tracer once setup_tracing() exported, else None


def valid(value: str | None) -> str | None:
    """`value` if it is a W3C traceparent of version 00, else None."""
    if value is None:
        return None
    value = value.strip().lower()
    return value if _TRACEPARENT.match(value) else None


def new_traceparent() -> str:
    """A new trace (sampled flag off: nothing records it unless tracing is on)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"


def trace_id(traceparent: str) -> str:
    return traceparent.split("-")[1]


def enabled() -> bool:
    return _tracer is not None


def setup_tracing(service: str, exporter: Any = None) -> bool:
    """Installs OpenTelemetry's SDK when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (or an
    `exporter` is given: tests); returns whether spans are now made and exported."""
    global _tracer
    if exporter is None and not os.environ.get(ENDPOINT_ENV):
        return False
    # Imported only here: without an endpoint the SDK never loads.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", service)})
    )
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        log.info("exporting traces to %s (OTLP/HTTP)", os.environ[ENDPOINT_ENV])
    else:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    # Not the global provider: only this module's middleware makes spans, and tests can
    # switch tracing off again.
    _tracer = provider.get_tracer("disputes")
    return True


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class TraceMiddleware:
    """Per request: the caller's valid `traceparent` (a new one if `originate` and there is
    none), a server span under it when tracing is on, and `current_traceparent()` set to
    what the next hop must receive."""

    def __init__(self, app: ASGIApp, originate: bool = False) -> None:
        self.app = app
        self.originate = originate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = valid(_header(scope, b"traceparent"))
        if _tracer is None:
            traceparent = incoming or (new_traceparent() if self.originate else None)
            if traceparent is None:
                await self.app(scope, receive, send)
                return
            token = _current.set(traceparent)
            structlog.contextvars.bind_contextvars(trace_id=trace_id(traceparent))
            try:
                await self.app(scope, receive, send)
            finally:
                _current.reset(token)
            return
        await self._traced(scope, receive, send, incoming)

    async def _traced(
        self, scope: Scope, receive: Receive, send: Send, incoming: str | None
    ) -> None:
        from opentelemetry import propagate, trace

        context = propagate.extract({"traceparent": incoming} if incoming else {})
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        method = scope.get("method", "")
        with _tracer.start_as_current_span(
            f"{method} {scope.get('path', '')}", context=context, kind=trace.SpanKind.SERVER
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            traceparent = carrier["traceparent"]
            token = _current.set(traceparent)
            structlog.contextvars.bind_contextvars(trace_id=trace_id(traceparent))
            try:
                await self.app(scope, receive, send_observed)
            finally:
                _current.reset(token)
                route = getattr(scope.get("route"), "path", None)
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attribute("http.route", route)
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.response.status_code", status)
                request_id = scope.get("state", {}).get("request_id")
                if request_id:
                    span.set_attribute("disputes.request_id", request_id)
                if status >= 500:
                    span.set_status(trace.StatusCode.ERROR)
