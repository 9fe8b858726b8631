"""Metrics, logs and offline docs of the HTTP tiers, and the one-line start-up refusals
(a missing database, a busy port)."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from prometheus_client import REGISTRY

from services.gateway.app import create_app as create_gateway
from shared import observability
from shared.observability import LogSettings
from tests.conftest import PgConnInfo

from .http_support import TestClient, running_service
from .test_gateway import settings as gateway_settings


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """This process's logging as JSON lines into a buffer, restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    settings = LogSettings(_env_file=None, log_format="json")  # type: ignore[call-arg]
    observability.setup_logging("dispute", settings, stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers, root.level = handlers, level
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_commands_replays_and_requests_are_counted_by_route_action_and_outcome(
    backend: dict[str, str],
) -> None:
    applied = {"action": "put_order", "outcome": "applied"}
    refused = {"action": "action_accept", "outcome": "version_mismatch"}
    route = {"tier": "dispute", "method": "PUT", "route": "/v1/orders/{order_id}", "status": "201"}
    before = {
        "applied": sample("disputes_commands_total", **applied),
        "refused": sample("disputes_commands_total", **refused),
        "replays": sample("disputes_idempotency_replays_total"),
        "requests": sample("disputes_http_requests_total", **route),
        "latency": sample("disputes_http_request_duration_seconds_count", **route),
    }
    with running_service(backend) as api:
        api.register_order()
        dispute = api.open_dispute()
        # an accept on a version the dispute is not at: refused, and counted so; its retry
        # with the same key is a replay
        key = f"k-{uuid.uuid4().hex}"
        first = api.act(dispute, "accept", "seller", "s1", idempotency_key=key, If_Match='"7"')
        again = api.act(dispute, "accept", "seller", "s1", idempotency_key=key, If_Match='"7"')
        assert first.status_code == again.status_code == 412, first.text
        assert again.headers["Idempotent-Replayed"] == "true"
        scraped = api.client.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert "disputes_commands_total" in scraped.text
    assert sample("disputes_commands_total", **applied) - before["applied"] == 2
    assert sample("disputes_commands_total", **refused) - before["refused"] == 1
    assert sample("disputes_idempotency_replays_total") - before["replays"] == 1
    assert sample("disputes_http_requests_total", **route) - before["requests"] == 2
    observed = sample("disputes_http_request_duration_seconds_count", **route)
    assert observed - before["latency"] == 2


def test_each_request_logs_one_json_access_line_with_its_request_and_dispute_ids(
    backend: dict[str, str], json_logs: io.StringIO
) -> None:
    with running_service(backend) as api:
        dispute = api.open_dispute()
        json_logs.seek(0)
        json_logs.truncate()
        path = f"/v1/disputes/{dispute['id']}"
        answer = api.call("GET", path, "buyer", "b1", X_Request_ID="req-observed-1")
        assert answer.status_code == 200
        missing = api.call("GET", "/v1/disputes/nope", "buyer", "b1", X_Request_ID="req-2")
        assert missing.status_code == 404
    lines = json_lines(json_logs.getvalue())
    access = [line for line in lines if line.get("logger") == "access"]
    assert [(a["request_id"], a["status"]) for a in access] == [
        ("req-observed-1", 200),
        ("req-2", 404),
    ], lines
    first = access[0]
    assert first["process"] == "dispute"
    assert first["level"] == "info"
    assert first["dispute_id"] == dispute["id"]
    assert first["route"] == "/v1/disputes/{dispute_id}"
    assert first["method"] == "GET" and first["path"] == path
    assert first["duration_ms"] >= 0 and first["timestamp"].endswith("Z")
    assert access[1]["dispute_id"] == "nope"


def test_the_gateway_serves_metrics_and_the_docs_without_a_cdn() -> None:
    app = create_gateway(gateway_settings("http://127.0.0.1:9"))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert 'disputes_http_requests_total{method="GET",route="/healthz",status="200"' in (
            metrics.text.replace('tier="gateway",', "")
        )
        assert "/metrics" not in client.get("/openapi.json").json()["paths"]
        for page in ("/docs", "/redoc"):
            html = client.get(page)
            assert html.status_code == 200, page
            assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html.text)
            assert assets, html.text
            for asset in assets:
                assert asset.startswith("/docs-assets/"), asset  # served here, not a CDN
                fetched = client.get(asset)
                assert fetched.status_code == 200 and len(fetched.content) > 10_000, asset
            assert "cdn" not in html.text.lower()


def _run(module: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("DISPUTES_", "DATABASE"))}
    return subprocess.run(
        [sys.executable, "-m", module],
        env={**keep, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.postgres
def test_a_missing_database_is_named_in_one_line(pg_conninfo: PgConnInfo) -> None:
    info = pg_conninfo
    name = f"missing_{uuid.uuid4().hex[:8]}"
    auth = info["user"] + (f":{info['password']}" if info["password"] else "")
    url = f"postgresql://{auth}@{info['host']}:{info['port']}/{name}"
    done = _run("services.dispute", {"DATABASE_URL": url})
    assert done.returncode == 2  # bad configuration: `make run` does not restart it
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f'database "{name}" does not exist' in lines[0]
    assert f"createdb -h {info['host']} -p {info['port']}" in lines[0]


def test_a_busy_port_stops_the_gateway_with_the_variable_to_change() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = _run("services.gateway", {"DISPUTES_GATEWAY_PORT": str(port)})
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "DISPUTES_GATEWAY_PORT" in done.stderr


def test_make_run_refuses_a_busy_port_before_starting_anything() -> None:
    """Rather than find another copy of the stack answering there and call it ready."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = _run("services.run", {"DISPUTES_PORT": str(port)})
    assert done.returncode == 2, done.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "DISPUTES_PORT" in done.stderr
    assert "API ready" not in done.stdout + done.stderr


def test_the_quarantine_gauge_counts_by_reader_and_drops_to_zero_when_released() -> None:
    from types import SimpleNamespace

    from services.dispute.metrics import sample_quarantine

    class Table:
        rows = [SimpleNamespace(reader="worker-x"), SimpleNamespace(reader="worker-x")]

        def entries(self) -> list[SimpleNamespace]:
            return self.rows

    table = Table()
    sample_quarantine(table)
    assert sample("disputes_quarantined_events", reader="worker-x") == 2
    table.rows = []
    sample_quarantine(table)
    assert sample("disputes_quarantined_events", reader="worker-x") == 0


def test_the_delivery_lag_is_the_subscription_furthest_behind(backend: dict[str, str]) -> None:
    import time as clock

    from services.dispute.delivery.store import WebhookStore
    from services.dispute.metrics import sample_delivery

    with running_service(backend) as api:
        application = api.client.app.state.application
        store = WebhookStore(application)
        head = application.recorder.max_notification_id() or 0
        sub = store.create("svc", "https://hooks.example/x", ["*"], None, position=head,
                           now=clock.time())  # fmt: skip
        sample_delivery(application, store)
        assert sample("disputes_delivery_lag_events") == 0
        assert sample("disputes_delivery_lag_seconds") == 0
        api.open_dispute()  # an order and a dispute: events the subscription has not had
        new_head = application.recorder.max_notification_id()
        sample_delivery(application, store)
        assert sample("disputes_delivery_lag_events") == new_head - head >= 2
        assert sample("disputes_delivery_lag_seconds") >= 0
        assert store.replay("svc", sub.id, after=new_head, now=clock.time())
        sample_delivery(application, store)
        assert sample("disputes_delivery_lag_events") == 0
