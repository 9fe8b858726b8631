"""The JetStream relay: every event of the feed, published to NATS JetStream.

Stream `DISPUTES` (created if missing, over `disputes.events.>`), subject
`disputes.events.<EventType>`, the body of the webhooks (services.dispute.delivery.
payloads), and headers `Nats-Msg-Id` (the event's id: the server drops a republished one
within the stream's duplicate window, two minutes by default), `Disputes-Aggregate-Id`
(the dispute's id, or the order's marketplace id), `Disputes-Aggregate-Type` (`dispute`
or `order`), `Disputes-Version` and `Disputes-Position`.

It follows the feed from a position stored in `event_relay_positions`, and stores a
batch's last position only after the server acknowledged every message of it. A crash in
between publishes those again after the restart, and the server drops them as duplicates.
One relay publishes at a time: it holds a lease on its position row, renewed with every
batch, so the relays of several delivery process replicas stand by for each other.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import nats
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from services.dispute.application import DisputeApplication
from services.dispute.infrastructure.backend import recorders_of
from services.dispute.infrastructure.pool import TRANSIENT_ERRORS

from .payloads import Payload, Payloads

log = logging.getLogger("services.dispute.delivery.jetstream")

ACK_TIMEOUT_SECONDS = 10.0


class RelayPositions:
    """Relay positions with a lease each, in the events' database (its backend's
    `RelayPositionRecorder`, services.dispute.infrastructure)."""

    def __init__(self, app: DisputeApplication, *, create: bool = True) -> None:
        self.recorder = recorders_of(app).relay_position_recorder()
        if create:
            self.recorder.create_table()

    def claim(self, name: str, token: str, *, now: float, lease: float) -> int | None:
        """The position, if this relay holds (or now takes) the lease; else None."""
        return self.recorder.claim(name, token, now=now, lease=lease)

    def advance(self, name: str, token: str, position: int, *, lease_until: float) -> bool:
        return self.recorder.advance(name, token, position, lease_until=lease_until)

    def release(self, name: str, token: str) -> None:
        self.recorder.release(name, token)

    def position(self, name: str) -> int:
        return self.recorder.position(name)


def headers_of(payload: Payload) -> dict[str, str]:
    return {
        "Nats-Msg-Id": payload.event_id,
        "Disputes-Aggregate-Id": payload.stream_id,
        "Disputes-Aggregate-Type": payload.stream,
        "Disputes-Version": str(payload.version),
        "Disputes-Position": str(payload.position),
    }


class JetStreamRelay:
    def __init__(
        self,
        app: DisputeApplication,
        url: str,
        *,
        stream: str = "DISPUTES",
        subject_prefix: str = "disputes.events",
        lease: float = 30.0,
        poll: float = 0.2,
        batch: int = 256,
        create: bool = True,
    ) -> None:
        self.app = app
        self.url = url
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.lease = lease
        self.poll = poll
        self.batch = batch
        self.payloads = Payloads(app)
        self.positions = RelayPositions(app, create=create)
        self.name = f"nats:{stream}"
        self.token = uuid.uuid4().hex
        self.duplicates = 0  # messages the server already had (republished after a crash)

    def run_forever(self, stop: threading.Event) -> None:
        asyncio.run(self.follow(stop))

    async def follow(self, stop: threading.Event) -> None:
        """Connects (again and again, if need be) and relays until `stop` is set."""
        while not stop.is_set():
            try:
                nc = await nats.connect(
                    self.url, connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=1
                )
            except Exception as error:
                log.warning("NATS at %s unreachable (%s); retrying", self.url, error)
                await asyncio.sleep(min(5.0, self.poll * 10))
                continue
            try:
                js = nc.jetstream()
                await self.ensure_stream(js)
                log.info("relaying the feed to JetStream stream %s at %s", self.stream, self.url)
                while not stop.is_set():
                    if not await self.relay_once(js):
                        await asyncio.sleep(self.poll)
            except TRANSIENT_ERRORS as error:  # the database is away: the pool says so once
                log.debug("relaying to JetStream paused (%s); retrying", error)
                await asyncio.sleep(min(5.0, self.poll * 10))
            except Exception:
                log.exception("relaying to JetStream failed; reconnecting")
                await asyncio.sleep(min(5.0, self.poll * 10))
            finally:
                await nc.close()
        self.positions.release(self.name, self.token)

    async def ensure_stream(self, js: JetStreamContext) -> None:
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(name=self.stream, subjects=[f"{self.subject_prefix}.>"])
            log.info("created JetStream stream %s", self.stream)

    async def relay_once(self, js: JetStreamContext) -> int:
        """Publishes the next batch, if this relay holds the lease; returns how many
        events were published and acknowledged (and their position stored)."""
        position = self.positions.claim(self.name, self.token, now=time.time(), lease=self.lease)
        if position is None:
            return 0  # another replica relays
        notifications = self.app.recorder.select_notifications(
            start=position, limit=self.batch, inclusive_of_start=False
        )
        if not notifications:
            return 0
        payloads = [self.payloads.of(n) for n in notifications]
        acks = await self.publish(js, payloads)
        if duplicates := sum(bool(ack.duplicate) for ack in acks):
            self.duplicates += duplicates
            log.info("%d of %d events were in the stream already", duplicates, len(acks))
        # Stored only now that the server has acknowledged every message of the batch.
        self.positions.advance(
            self.name, self.token, payloads[-1].position, lease_until=time.time() + self.lease
        )
        return len(payloads)

    async def publish(self, js: JetStreamContext, payloads: Sequence[Payload]) -> list[Any]:
        """In position order, pipelined: each message is sent before the next, and all
        acknowledgements are awaited together."""
        futures = [
            await js.publish_async(
                f"{self.subject_prefix}.{p.event_type}",
                p.body,
                stream=self.stream,
                headers=headers_of(p),
            )
            for p in payloads
        ]
        return list(await asyncio.wait_for(asyncio.gather(*futures), timeout=ACK_TIMEOUT_SECONDS))
