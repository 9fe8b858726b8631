"""The delivery process (`python -m services.dispute.delivery`) as a real process: killed
with SIGKILL in the middle of a delivery, and restarted, it loses nothing: the receiver
gets every event, in order; only the one in flight may come twice (same webhook-id). Its
JetStream relay, running meanwhile, leaves each event in the stream exactly once."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import nats
import pytest
from nats.js.errors import NotFoundError
from psycopg import sql

from tests.conftest import PgConnInfo, connect
from tests.webhook_receiver import receiver

from .stack import SERVICE_TOKEN, Stack, e2e_stack

pytestmark = pytest.mark.e2e


def headers(role: str, who: str) -> dict[str, str]:
    return {"X-Internal-Token": SERVICE_TOKEN, "X-Principal-Role": role, "X-Principal-Id": who}


@pytest.fixture
def stream(nats_url: str) -> Iterator[str]:
    name = f"E2E_{uuid.uuid4().hex[:10]}"
    yield name
    with contextlib.suppress(NotFoundError):
        asyncio.run(delete_stream(nats_url, name))


async def delete_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


async def stream_ids(url: str, stream: str) -> list[str]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        messages = [await js.get_msg(stream, n) for n in range(1, info.state.messages + 1)]
        return [m.headers["Nats-Msg-Id"] for m in messages]  # type: ignore[index]
    finally:
        await nc.close()


@pytest.fixture
def service(pg_conninfo: PgConnInfo, tmp_path: Path, nats_url: str, stream: str) -> Iterator[Stack]:
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    info = pg_conninfo
    auth = quote(info["user"], safe="") + (
        ":" + quote(info["password"], safe="") if info["password"] else ""
    )
    url = f"postgresql://{auth}@{info['host']}:{info['port']}/{info['dbname']}"
    stack = e2e_stack(
        url, schema, tmp_path,
        DISPUTES_SANDBOX="0",
        DISPUTES_THREADS="4",
        DISPUTES_WEBHOOKS_CONCURRENCY="2",
        DISPUTES_WEBHOOKS_ALLOW_PRIVATE="1",
        DISPUTES_WEBHOOKS_LEASE_SECONDS="2",
        DISPUTES_WEBHOOKS_RETRY_SCHEDULE="[0.2, 0.5, 1]",
        DISPUTES_WEBHOOKS_POLL_SECONDS="0.05",
        DISPUTES_NATS_URL=nats_url,
        DISPUTES_NATS_STREAM=stream,
        DISPUTES_NATS_SUBJECT_PREFIX=f"{stream.lower()}.events",
    )  # fmt: skip
    try:
        stack.start("service")
        stack.wait_ready(stack.service_url)
        yield stack
    finally:
        stack.stop_all()
        with connect(pg_conninfo) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def make_events(client: httpx.Client, disputes: int, messages: int) -> None:
    placed = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    for _ in range(disputes):
        ref = f"o-{uuid.uuid4().hex[:8]}"
        order = client.put(f"/v1/orders/{ref}", headers=headers("service", "orders"), json={
            "buyer_id": "b1", "seller_id": "s1", "amount": {"amount": 5000, "currency": "USD"},
            "payment_method": "card", "placed_at": placed})  # fmt: skip
        assert order.status_code == 201, order.text
        opened = client.post("/v1/disputes", headers=headers("buyer", "b1"), json={
            "order_id": ref, "reason": "not_received", "description": "never came",
            "requested_resolution": "refund_only", "amount": {"amount": 5000, "currency": "USD"},
        })  # fmt: skip
        assert opened.status_code == 201, opened.text
        for n in range(messages):
            said = client.post(f"/v1/disputes/{opened.json()['id']}/messages",
                               headers=headers("buyer", "b1"), json={"body": f"m{n}"})  # fmt: skip
            assert said.status_code == 200, said.text


def test_the_delivery_process_killed_mid_delivery_loses_nothing(
    service: Stack, nats_url: str, stream: str
) -> None:
    with receiver() as endpoint, httpx.Client(base_url=service.service_url, timeout=30) as client:
        endpoint.slow_times, endpoint.slow_seconds = 10_000, 0.3
        hook = client.post("/v1/webhooks", headers=headers("service", "payments"),
                           json={"url": endpoint.url, "events": ["*"]})  # fmt: skip
        assert hook.status_code == 201, hook.text
        make_events(client, disputes=2, messages=2)

        service.start("delivery")
        deadline = time.monotonic() + 60
        while len(endpoint.received) < 2:  # a few delivered, then kill one in flight
            assert time.monotonic() < deadline, service.tail()
            time.sleep(0.02)
        endpoint.arrived.clear()
        assert endpoint.arrived.wait(30), service.tail()
        killed = service.processes.pop("delivery")
        killed.kill()  # SIGKILL: no chance to record anything
        killed.wait()

        make_events(client, disputes=1, messages=1)  # committed while nobody delivers
        endpoint.slow_times = 0
        service.start("delivery")
        events = client.get("/v1/events?limit=1000", headers=headers("service", "x")).json()
        ids = [e["id"] for e in events["events"]]
        assert len(ids) == 3 * 3 + 2 * 2 + 1  # per order: registered, opened (x2); messages
        deadline = time.monotonic() + 60
        while {r.event_id for r in endpoint.delivered()} != set(ids):
            assert time.monotonic() < deadline, service.tail()
            time.sleep(0.05)
        while len(asyncio.run(stream_ids(nats_url, stream))) < len(ids):
            assert time.monotonic() < deadline, service.tail()
            time.sleep(0.1)
        time.sleep(0.3)

    assert asyncio.run(stream_ids(nats_url, stream)) == ids  # each once, in order
    got = [r.event_id for r in endpoint.delivered()]
    first_seen = list(dict.fromkeys(got))
    assert first_seen == ids  # every event, in position order
    # at most the one in flight, again (a slow receiver: each delivery is recorded alone)
    assert len(got) - len(ids) <= 1, got
    assert set(got[:-1]) <= set(ids)
