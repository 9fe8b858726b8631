"""The webhook deliverer: follows the feed for every subscription and delivers in order.

Each of `concurrency` threads repeatedly claims one subscription that has something to
deliver (the one due longest: `WebhookStore.claim`, `FOR UPDATE SKIP LOCKED` on
PostgreSQL, so replicas never claim the same one), delivers the events after its
position one at a time, in position order, and records every attempt in the transaction
that moves the position (or schedules the retry). A failure (an answer other than 2xx,
no answer within the timeout, a refused destination) ends the turn: the subscription
waits out its back-off while the threads serve the others, so one slow or dead endpoint
holds up only itself. A turn also ends after `turn_seconds`, so a long backlog takes
turns with the rest.

Successful deliveries are recorded together, every `record_every` deliveries or
`record_seconds` (20, 0.1 s), with the position after the last of them, in one
transaction: one commit per delivery would cap a subscription at the commits per second
the database does in a row. Deliveries are at least once: a process killed between
the receivers' 2xx and the record's commit delivers those (at most 20) events again when
its claim has expired (`lease`), with the same `webhook-id`s, the events' ids.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import certifi
import urllib3
from standardwebhooks import Webhook

from services.dispute.application import DisputeApplication
from services.dispute.infrastructure.pool import TRANSIENT_ERRORS

from .payloads import Payload, Payloads, event_type_of
from .store import Attempt, Subscription, WebhookStore
from .urls import UnsafeDestination, check_url

log = logging.getLogger("services.dispute.delivery")

DELIVERY_LOG_DAYS = 30
PURGE_EVERY_SECONDS = 600.0
USER_AGENT = "disputes-webhooks/1"
MAX_ANSWER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Outcome:
    ok: bool
    code: int | None
    error: str | None
    started_at: float
    duration_ms: int


def backoff(schedule: Sequence[float], attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based) of an event."""
    return schedule[min(attempt, len(schedule)) - 1]


class Deliverer:
    def __init__(
        self,
        app: DisputeApplication,
        store: WebhookStore,
        *,
        allow_private: bool = False,
        schedule: Sequence[float] = (5.0,),
        timeout: float = 10.0,
        lease: float = 30.0,
        concurrency: int = 8,
        poll: float = 0.2,
        batch: int = 100,
        turn_seconds: float = 5.0,
        record_every: int = 20,
        record_seconds: float = 0.1,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.store = store
        self.payloads = Payloads(app)
        self.allow_private = allow_private
        self.schedule = tuple(schedule)
        self.timeout = timeout
        self.lease = lease
        self.concurrency = concurrency
        self.poll = poll
        self.batch = batch
        self.turn_seconds = turn_seconds
        self.record_every = record_every
        self.record_seconds = record_seconds
        self.now = now
        # urllib3 rather than httpx: a delivery's own CPU is about 250 µs of HTTP client
        # against 400 (README, Benchmarks, the third round). No retries and no redirects:
        # a failure is an attempt, retried on the subscription's schedule. Keep-alive, one
        # pool per destination host.
        self.client = urllib3.PoolManager(
            num_pools=64,
            maxsize=concurrency,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,
            ca_certs=certifi.where(),
        )
        self._purged_at = 0.0

    def close(self) -> None:
        self.client.clear()

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Running -----------------------------------------------------------------------------

    def run_forever(self, stop: threading.Event) -> None:
        threads = [
            threading.Thread(target=self._loop, args=(stop,), name=f"webhooks-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _loop(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                worked = self.run_once()
                if threading.current_thread().name == "webhooks-0":
                    self._purge()
            except TRANSIENT_ERRORS as error:
                # The database is away: the pool logs one line when it goes and one when
                # it is back, so no traceback per turn; the claim expires, the turn resumes.
                log.debug("webhook delivery turn failed (%s); retrying", error)
                stop.wait(min(5.0, self.poll * 10))
                continue
            except Exception:  # anything else is a bug worth its traceback
                log.exception("webhook delivery turn failed; retrying")
                stop.wait(min(5.0, self.poll * 10))
                continue
            if not worked:
                stop.wait(self.poll)

    def run_once(self) -> bool:
        """Takes one turn at one subscription; returns False when none had anything due."""
        end = self.app.recorder.max_notification_id() or 0
        token = uuid.uuid4().hex
        sub = self.store.claim(token, below=end, now=self.now(), lease=self.lease)
        if sub is None:
            return False
        self._turn(sub, token)
        return True

    def drain(self, timeout: float = 30.0) -> None:
        """Delivers until nothing is due now (tests, benchmarks); single-threaded."""
        deadline = time.monotonic() + timeout
        while self.run_once():
            if time.monotonic() > deadline:
                raise TimeoutError("webhook deliveries still due")

    def _purge(self) -> None:
        if time.monotonic() - self._purged_at < PURGE_EVERY_SECONDS:
            return
        self._purged_at = time.monotonic()
        purged = self.store.purge_deliveries(self.now() - DELIVERY_LOG_DAYS * 86_400)
        if purged:
            log.info("purged %d delivery records older than %d days", purged, DELIVERY_LOG_DAYS)

    # One turn ----------------------------------------------------------------------------

    def _turn(self, sub: Subscription, token: str) -> None:
        passed = sub.position  # up to here everything is delivered or not wanted
        attempts = sub.attempts
        delivered: list[Attempt] = []  # not recorded yet
        started = flushed = time.monotonic()
        webhook = Webhook(sub.secret)
        while time.monotonic() - started < self.turn_seconds:
            notifications = self.app.recorder.select_notifications(
                start=passed, limit=self.batch, inclusive_of_start=False
            )
            for notification in notifications:
                if not sub.wants(event_type_of(notification.topic)):
                    passed = notification.id
                    continue
                payload = self.payloads.of(notification)
                outcome = self.post(sub.url, webhook, payload)
                attempt = Attempt(
                    event_id=payload.event_id,
                    position=payload.position,
                    event_type=payload.event_type,
                    attempt=attempts + 1,
                    status="delivered" if outcome.ok else "failed",
                    response_code=outcome.code,
                    error=outcome.error,
                    attempted_at=outcome.started_at,
                    duration_ms=outcome.duration_ms,
                    next_retry_at=None,
                    event_at=payload.event_at,
                )
                now = self.now()
                if not outcome.ok:
                    retry_at = now + backoff(self.schedule, attempt.attempt)
                    failure = replace(attempt, next_retry_at=retry_at)
                    self.store.record(
                        sub, token, delivered=delivered, failure=failure, passed=passed, now=now
                    )
                    log.info(
                        "webhook %s: %s failed (%s), attempt %d; retry in %.1fs",
                        sub.id, payload.event_id, outcome.error or outcome.code,
                        attempt.attempt, retry_at - now,
                    )  # fmt: skip
                    return
                delivered.append(attempt)
                passed, attempts = payload.position, 0
                if len(delivered) >= self.record_every or (
                    time.monotonic() - flushed >= self.record_seconds
                ):
                    kept = self.store.record(
                        sub, token, delivered=delivered, passed=passed, now=now,
                        keep_until=now + self.lease,
                    )  # fmt: skip
                    if not kept:
                        return  # replayed or deleted meanwhile: the claim is gone
                    delivered, flushed = [], time.monotonic()
                if time.monotonic() - started >= self.turn_seconds:
                    break
            else:
                if len(notifications) < self.batch:
                    break
        self.store.record(sub, token, delivered=delivered, passed=passed, now=self.now())

    def post(self, url: str, webhook: Webhook, payload: Payload) -> Outcome:
        """One attempt: signed as Standard Webhooks says, a 2xx within the timeout or not."""
        started_at = self.now()
        t0 = time.monotonic()

        def outcome(ok: bool, code: int | None, error: str | None) -> Outcome:
            return Outcome(ok, code, error, started_at, int((time.monotonic() - t0) * 1000))

        try:
            check_url(url, allow_private=self.allow_private)
        except UnsafeDestination as refused:
            return outcome(False, None, f"destination refused: {refused}")
        timestamp = int(started_at)
        signature = webhook.sign(
            payload.event_id, datetime.fromtimestamp(timestamp, UTC), payload.body.decode()
        )
        headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            "webhook-id": payload.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
        try:
            answer = self.client.urlopen(
                "POST", url, body=payload.body, headers=headers,
                redirect=False, retries=False, preload_content=False,
            )  # fmt: skip
            # A 2xx status is the whole acknowledgement. The body is read (up to a limit,
            # beyond which the connection is dropped) only to reuse the connection.
            try:
                code, read = answer.status, 0
                for chunk in answer.stream(16 * 1024, decode_content=False):
                    read += len(chunk)
                    if read > MAX_ANSWER_BYTES:
                        answer.close()
                        break
            finally:
                answer.release_conn()
        except urllib3.exceptions.TimeoutError:
            return outcome(False, None, f"no answer within {self.timeout:g} s")
        except urllib3.exceptions.HTTPError as error:
            return outcome(False, None, f"{type(error).__name__}: {error}"[:500])
        if 200 <= code < 300:
            return outcome(True, code, None)
        return outcome(False, code, f"answered {code}")
