"""With OTEL_EXPORTER_OTLP_ENDPOINT set, the real gateway and dispute service export their
spans as OTLP/HTTP: one trace from the caller's traceparent through the gateway to the
service, whose span the events of the request record."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from psycopg import sql

from services.stack import free_port
from tests.conftest import PgConnInfo, connect

from .stack import Stack, e2e_stack

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


class Collector:
    """A stand-in OTLP/HTTP collector: keeps every span it is sent."""

    def __init__(self) -> None:
        self.port = free_port()
        self.spans: list[dict[str, Any]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    service = next(
                        a.value.string_value
                        for a in resource.resource.attributes
                        if a.key == "service.name"
                    )
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            collector.spans.append({
                                "service": service,
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_id": span.parent_span_id.hex(),
                            })  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def collector() -> Iterator[Collector]:
    found = Collector()
    found.thread.start()
    try:
        yield found
    finally:
        found.server.shutdown()
        found.server.server_close()


@pytest.fixture
def traced_stack(pg_conninfo: PgConnInfo, tmp_path: Path, collector: Collector) -> Iterator[Stack]:
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    info = pg_conninfo
    auth = quote(info["user"], safe="") + (
        ":" + quote(info["password"], safe="") if info["password"] else ""
    )
    url = f"postgresql://{auth}@{info['host']}:{info['port']}/{info['dbname']}"
    stack = e2e_stack(
        url,
        schema,
        tmp_path,
        OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
        OTEL_BSP_SCHEDULE_DELAY="100",  # export within 0.1 s instead of 5
    )
    try:
        stack.start_all(others=("gateway",))
        yield stack
    finally:
        stack.stop_all()
        with connect(pg_conninfo) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_one_trace_from_the_caller_through_the_gateway_to_the_service_and_its_events(
    traced_stack: Stack, collector: Collector
) -> None:
    stack = traced_stack
    placed = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    with httpx.Client(base_url=stack.gateway_url, timeout=30) as client:
        orders = {"Authorization": "Bearer " + stack.token("service", "orders")}
        buyer = {"Authorization": "Bearer " + stack.token("buyer", "b1"), "traceparent": CALLER}
        put = client.put("/v1/orders/o-traced", headers=orders, json={
            "buyer_id": "b1", "seller_id": "s1", "amount": {"amount": 5000, "currency": "USD"},
            "payment_method": "card", "placed_at": placed})  # fmt: skip
        assert put.status_code == 201, put.text
        opened = client.post("/v1/disputes", headers=buyer, json={
            "order_id": "o-traced", "reason": "not_received", "description": "never came",
            "requested_resolution": "refund_only", "amount": {"amount": 5000, "currency": "USD"},
        })  # fmt: skip
        assert opened.status_code == 201, opened.text
        events = client.get(f"/v1/disputes/{opened.json()['id']}/events", headers=buyer).json()

    deadline = time.monotonic() + 20
    while True:
        posts = [s for s in collector.spans if s["name"] == "POST /v1/disputes"]
        if len(posts) == 2:
            break
        assert time.monotonic() < deadline, (collector.spans, stack.tail())
        time.sleep(0.1)
    gateway = next(s for s in posts if s["service"] == "gateway")
    service = next(s for s in posts if s["service"] == "dispute")
    assert gateway["trace_id"] == service["trace_id"] == CALLER_TRACE
    assert gateway["parent_id"] == CALLER.split("-")[2]
    assert service["parent_id"] == gateway["span_id"]
    recorded = [e["traceparent"] for e in events["events"]]
    assert recorded == [f"00-{CALLER_TRACE}-{service['span_id']}-01"]
