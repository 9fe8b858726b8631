"""Webhook subscriptions, their positions and their delivery log, in the events' database.

Two tables (schema-qualified on PostgreSQL, as the scheduler's):

- `webhook_subscriptions`: one row per subscription: its owner (the service principal
  that created it), URL, event types, signing secret, and its delivery state: `position`
  (the last feed position delivered or passed over), `attempts` (failed attempts at the
  next event), `next_attempt_at`, and the claim of the process delivering to it now
  (`claimed_by`, `lease_until`).
- `webhook_deliveries`: every attempt: event, status, answer code, time, next retry.

Every delivery attempt is recorded in the transaction that moves the subscription's
position (or schedules its retry), and only by the process that holds the claim: a
process that died leaves the claim to expire, and the next claimer resumes from the last
recorded position. Times are seconds since the epoch (float) in these tables.
"""

from __future__ import annotations

import json
import secrets
import uuid
from base64 import b64encode
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.dispute.infrastructure.backend import recorders_of
from services.dispute.infrastructure.webhooks import DELIVERIES_TABLE, SUBSCRIPTIONS_TABLE

__all__ = ["DELIVERIES_TABLE", "SUBSCRIPTIONS_TABLE", "Attempt", "Subscription", "WebhookStore"]

MAX_SUBSCRIPTIONS_PER_OWNER = 100
SECRET_BYTES = 32


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes them: `whsec_` + base64 of 32 bytes."""
    return "whsec_" + b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


@dataclass(frozen=True)
class Subscription:
    id: str
    owner: str
    url: str
    events: tuple[str, ...]
    description: str | None
    secret: str
    created_at: float
    position: int
    attempts: int
    next_attempt_at: float
    failing_since: float | None

    def wants(self, event_type: str) -> bool:
        return "*" in self.events or event_type in self.events

    @classmethod
    def from_row(cls, row: Any) -> Subscription:
        return cls(
            id=row["id"],
            owner=row["owner"],
            url=row["url"],
            events=tuple(json.loads(row["events"])),
            description=row["description"],
            secret=row["secret"],
            created_at=float(row["created_at"]),
            position=int(row["position"]),
            attempts=int(row["attempts"]),
            next_attempt_at=float(row["next_attempt_at"]),
            failing_since=None if row["failing_since"] is None else float(row["failing_since"]),
        )


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt, as the log keeps it."""

    event_id: str
    position: int
    event_type: str
    attempt: int  # 1 for the first try of this event
    status: str  # "delivered" or "failed"
    response_code: int | None
    error: str | None
    attempted_at: float
    duration_ms: int
    next_retry_at: float | None
    event_at: float  # the event's own time: delivered_at - event_at is the lag

    def row(self, subscription_id: str) -> tuple[Any, ...]:
        return (
            subscription_id, self.event_id, self.position, self.event_type, self.attempt,
            self.status, self.response_code, self.error, self.attempted_at, self.duration_ms,
            self.next_retry_at, self.event_at,
        )  # fmt: skip


@dataclass(frozen=True)
class LoggedAttempt:
    id: int
    subscription_id: str
    attempt: Attempt


class TooManySubscriptions(Exception):
    pass


class WebhookStore:
    """The tables above, on an application's datastore (`WebhookStore(app)`), through
    its backend's `WebhookRecorder` (services.dispute.infrastructure)."""

    def __init__(self, app_or_datastore: Any, *, create: bool = True) -> None:
        self.recorder = recorders_of(app_or_datastore).webhook_recorder()
        if create:
            self.create_tables()

    def create_tables(self) -> None:
        self.recorder.create_tables()

    # The subscriptions API ---------------------------------------------------------------

    def create(
        self,
        owner: str,
        url: str,
        events: Sequence[str],
        description: str | None,
        *,
        position: int,
        now: float,
    ) -> Subscription:
        """A new subscription, delivering what follows `position` (the feed's end now)."""
        sub = Subscription(
            id=str(uuid.uuid4()), owner=owner, url=url, events=tuple(events),
            description=description, secret=new_secret(), created_at=now, position=position,
            attempts=0, next_attempt_at=now, failing_since=None,
        )  # fmt: skip
        row = (
            *(sub.id, owner, url, json.dumps(list(events)), description, sub.secret),
            *(now, position, 0, now, None),
        )
        if not self.recorder.insert_subscription(row, owner, MAX_SUBSCRIPTIONS_PER_OWNER):
            raise TooManySubscriptions(owner)
        return sub

    def positions(self) -> list[int]:
        """Every subscription's position (for the delivery lag metrics)."""
        return self.recorder.positions()

    def owned(self, owner: str) -> list[Subscription]:
        return [Subscription.from_row(r) for r in self.recorder.owned(owner)]

    def get(self, owner: str | None, subscription_id: str) -> Subscription | None:
        """The subscription, if it exists and (unless `owner` is None) is `owner`'s."""
        row = self.recorder.subscription(subscription_id)
        if row is None or (owner is not None and row["owner"] != owner):
            return None
        return Subscription.from_row(row)

    def delete(self, owner: str, subscription_id: str) -> bool:
        return self.recorder.delete(owner, subscription_id)

    def replay(self, owner: str, subscription_id: str, after: int, now: float) -> bool:
        """Moves the subscription back (or forward) to deliver what follows `after`; a
        delivery in flight loses its claim and records nothing more."""
        return self.recorder.replay(owner, subscription_id, after, now)

    def deliveries(
        self, subscription_id: str, *, limit: int, before: int | None = None
    ) -> list[LoggedAttempt]:
        """The subscription's attempts, newest first."""
        rows = self.recorder.deliveries(subscription_id, limit=limit, before=before)
        return [_logged(r) for r in rows]

    def purge_deliveries(self, older_than: float) -> int:
        return self.recorder.purge_deliveries(older_than)

    # The delivery process ----------------------------------------------------------------

    def claim(self, token: str, *, below: int, now: float, lease: float) -> Subscription | None:
        """Claims the subscription due longest, not claimed by a live process, with events
        to deliver (position below the feed's end `below`); None if there is none."""
        row = self.recorder.claim(token, below=below, now=now, lease=lease)
        return None if row is None else Subscription.from_row(row)

    def record(
        self,
        sub: Subscription,
        token: str,
        *,
        delivered: Sequence[Attempt] = (),
        failure: Attempt | None = None,
        passed: int,
        now: float,
        keep_until: float | None = None,
    ) -> bool:
        """In one transaction, if the claim still holds: logs the `delivered` attempts (and
        the `failure`), and moves the position to `passed` (everything up to it delivered
        or not wanted). With a failure, schedules its retry and lets the claim go; with
        `keep_until`, keeps the claim until then; else lets it go, due again at once.
        Returns whether the claim held (if not, nothing is recorded)."""
        attempts = [*delivered, *([failure] if failure is not None else [])]
        return self.recorder.record(
            sub.id,
            token,
            passed=passed,
            now=now,
            delivered=bool(delivered),
            failure=None if failure is None else (failure.attempt, failure.next_retry_at),
            keep_until=keep_until,
            attempts=[a.row(sub.id) for a in attempts],
        )


def _logged(row: Any) -> LoggedAttempt:
    def opt(v: Any) -> float | None:
        return None if v is None else float(v)

    return LoggedAttempt(
        id=int(row["id"]),
        subscription_id=row["subscription_id"],
        attempt=Attempt(
            event_id=row["event_id"],
            position=int(row["position"]),
            event_type=row["event_type"],
            attempt=int(row["attempt"]),
            status=row["status"],
            response_code=row["response_code"],
            error=row["error"],
            attempted_at=float(row["attempted_at"]),
            duration_ms=int(row["duration_ms"]),
            next_retry_at=opt(row["next_retry_at"]),
            event_at=float(row["event_at"]),
        ),
    )
