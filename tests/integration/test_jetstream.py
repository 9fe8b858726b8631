"""Publication to NATS JetStream against the real server (127.0.0.1:4222, or NATS_URL):
every event once per stream, in order, with its headers, also when a batch is published
again after a crash before its position was stored. Each test uses a stream and subjects
of its own and deletes them afterwards."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import nats
import pytest

from services.dispute.delivery.jetstream import JetStreamRelay

from .http_support import Api, running_service


@pytest.fixture
def api(backend: dict[str, str]) -> Iterator[Api]:
    with running_service(backend, threads=4) as service:
        yield service


async def read_stream(url: str, stream: str) -> list[Any]:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        return [await js.get_msg(stream, seq) for seq in range(1, info.state.messages + 1)]
    finally:
        await nc.close()


async def delete_stream(url: str, stream: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def test_every_event_is_published_once_in_order_even_when_republished(
    api: Api, nats_url: str
) -> None:
    tag = uuid.uuid4().hex[:10]
    stream, prefix = f"TEST_{tag}", f"test_{tag}.events"
    app = api.client.app.state.application  # type: ignore[attr-defined]
    relay = JetStreamRelay(app, nats_url, stream=stream, subject_prefix=prefix)
    dispute = api.open_dispute()
    api.act(dispute, "messages", "buyer", "b1", {"body": "hello"})
    events = api.call("GET", "/v1/events?limit=1000", "service", "x").json()["events"]
    assert len(events) == 4

    async def scenario() -> tuple[list[Any], int]:
        nc = await nats.connect(nats_url)
        try:
            js = nc.jetstream()
            await relay.ensure_stream(js)  # created: it was missing
            # A relay that published the first two and died before storing its position:
            notes = app.recorder.select_notifications(start=1, limit=2)
            first_acks = await relay.publish(js, [relay.payloads.of(n) for n in notes])
            assert relay.positions.position(relay.name) == 0
            # the next relay starts from the stored position and publishes them again
            published = await relay.relay_once(js)
            while await relay.relay_once(js):
                pass
            return first_acks, published
        finally:
            await nc.close()

    try:
        first_acks, published = asyncio.run(scenario())
        messages = asyncio.run(read_stream(nats_url, stream))
    finally:
        asyncio.run(delete_stream(nats_url, stream))

    assert not any(a.duplicate for a in first_acks)
    assert published == 4 and relay.duplicates == 2  # the server dropped the two again
    assert relay.positions.position(relay.name) == events[-1]["position"]
    # the stream holds each event once, in position order
    assert [m.headers["Nats-Msg-Id"] for m in messages] == [e["id"] for e in events]
    assert [m.subject for m in messages] == [f"{prefix}.{e['type']}" for e in events]
    for message, event in zip(messages, events, strict=True):
        assert message.headers["Disputes-Aggregate-Id"] == event["stream_id"]
        assert message.headers["Disputes-Aggregate-Type"] == event["stream"]
        assert message.headers["Disputes-Version"] == str(event["version"])
        assert message.headers["Disputes-Position"] == str(event["position"])
        body = json.loads(message.data)
        assert body["type"] == event["type"] and body["data"]["event"]["id"] == event["id"]
    opened = next(d for m in messages if "dispute_id" in (d := json.loads(m.data)["data"]))
    assert opened["dispute_id"] == dispute["id"] and opened["dispute"]["state"] == "awaiting_seller"


def test_one_relay_at_a_time_holds_the_position(api: Api) -> None:
    app = api.client.app.state.application  # type: ignore[attr-defined]
    first = JetStreamRelay(app, "nats://unused:4222", stream="S1", lease=30)
    second = JetStreamRelay(app, "nats://unused:4222", stream="S1", lease=30)
    assert first.positions.claim(first.name, first.token, now=100.0, lease=30) == 0
    assert second.positions.claim(second.name, second.token, now=110.0, lease=30) is None
    assert first.positions.advance(first.name, first.token, 7, lease_until=140.0)
    assert not second.positions.advance(second.name, second.token, 9, lease_until=140.0)
    # the first died: after its lease the second takes over from the stored position
    assert second.positions.claim(second.name, second.token, now=141.0, lease=30) == 7
    assert not first.positions.advance(first.name, first.token, 8, lease_until=200.0)
    assert first.positions.position(first.name) == 7
