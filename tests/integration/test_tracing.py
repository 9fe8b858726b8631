"""W3C trace context from the gateway to the dispute service and onto the events a request
causes; OpenTelemetry spans (here into an in-memory exporter instead of OTLP) when
tracing is on, nothing of the SDK when it is off."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from services.gateway.app import create_app as create_gateway
from shared import tracing

from .gateway_servers import Upstream, recording_upstream, serve
from .http_support import TOKEN, dispute_body, order_body, running_service, uvicorn_server
from .test_gateway import bearer, settings, token

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Tracing on in this process, into memory; off again afterwards."""
    exporter = InMemorySpanExporter()
    monkeypatch.setattr(tracing, "_tracer", None)
    assert tracing.setup_tracing("tests", exporter=exporter)
    yield exporter
    monkeypatch.setattr(tracing, "_tracer", None)


def events_of(api: Any, dispute: dict[str, Any]) -> list[dict[str, Any]]:
    answer = api.call("GET", f"/v1/disputes/{dispute['id']}/events", "buyer", "b1")
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def test_the_events_of_a_request_record_its_traceparent(backend: dict[str, str]) -> None:
    with running_service(backend) as api:
        order = api.register_order()
        traced = api.call(
            "POST", "/v1/disputes", "buyer", "b1", dispute_body(order), traceparent=CALLER
        )
        assert traced.status_code == 201, traced.text
        untraced = api.open_dispute()  # no traceparent: the service makes none up
        assert [e["traceparent"] for e in events_of(api, traced.json())] == [CALLER]
        assert [e["traceparent"] for e in events_of(api, untraced)] == [None]
        # a malformed one is ignored, not recorded
        bad = api.call(
            "POST", "/v1/disputes", "buyer", "b1", dispute_body(api.register_order()),
            traceparent="00-" + "0" * 32 + "-00f067aa0ba902b7-01",
        )  # fmt: skip
        assert [e["traceparent"] for e in events_of(api, bad.json())] == [None]


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with recording_upstream() as server:
        yield server


def test_the_gateway_passes_the_callers_traceparent_on_or_starts_a_trace(
    upstream: Upstream,
) -> None:
    with serve(create_gateway(settings(upstream.url))) as url, httpx.Client(base_url=url) as gw:
        caller = bearer(token("buyer", "b-1"))
        assert gw.get("/v1/disputes/d-1", headers={**caller, "traceparent": CALLER}).is_success
        assert gw.get("/v1/disputes/d-2", headers=caller).is_success
    passed, started = (r.headers["traceparent"] for r in upstream.received)
    assert passed == CALLER
    assert tracing.valid(started) == started and started.split("-")[1] != CALLER.split("-")[1]


def test_with_tracing_on_the_service_span_is_the_gateways_child_and_the_events_name_it(
    backend: dict[str, str], spans: InMemorySpanExporter
) -> None:
    with (
        uvicorn_server(backend) as service,
        serve(create_gateway(settings(service, service_token=TOKEN))) as url,
        httpx.Client(base_url=url, timeout=30) as gw,
    ):
        orders = bearer(token("service", "orders"))
        assert gw.put("/v1/orders/o-traced", json=order_body(), headers=orders).status_code == 201
        buyer = {**bearer(token("buyer", "b1")), "traceparent": CALLER}
        opened = gw.post("/v1/disputes", json=dispute_body("o-traced"), headers=buyer)
        assert opened.status_code == 201, opened.text
        history = gw.get(f"/v1/disputes/{opened.json()['id']}/events", headers=buyer).json()
    finished = spans.get_finished_spans()
    posts = [s for s in finished if s.name == "POST /v1/disputes"]
    assert len(posts) == 2, [s.name for s in finished]  # the gateway's and the service's
    trace_id = int(CALLER.split("-")[1], 16)
    gateway_span = next(s for s in posts if s.parent and s.parent.span_id == int(CALLER[36:52], 16))
    service_span = next(s for s in posts if s is not gateway_span)
    assert gateway_span.context.trace_id == service_span.context.trace_id == trace_id
    assert service_span.parent is not None
    assert service_span.parent.span_id == gateway_span.context.span_id
    assert service_span.attributes["http.route"] == "/v1/disputes"
    assert service_span.attributes["http.response.status_code"] == 201
    service_context = f"00-{trace_id:032x}-{service_span.context.span_id:016x}-01"
    assert [e["traceparent"] for e in history["events"]] == [service_context]


def test_without_an_endpoint_no_tracer_is_made_and_no_exporter_loaded() -> None:
    """(redis imports the SDK's metrics package when it is installed; its tracing and the
    OTLP exporter stay unloaded, and requests take the no-trace path.)"""
    code = (
        "import sys\n"
        "from services.gateway.app import create_app\n"
        "from services.dispute.api.app import create_app as service\n"
        "from shared import tracing\n"
        "assert not tracing.setup_tracing('x') and not tracing.enabled()\n"
        "print(sorted(m for m in sys.modules\n"
        "             if m.startswith(('opentelemetry.sdk.trace', 'opentelemetry.exporter'))))\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert done.stdout.strip() == "[]"
