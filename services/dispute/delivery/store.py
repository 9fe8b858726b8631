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

from services.dispute.scheduler import _Sql

SUBSCRIPTIONS_TABLE = "webhook_subscriptions"
DELIVERIES_TABLE = "webhook_deliveries"
MAX_SUBSCRIPTIONS_PER_OWNER = 100
SECRET_BYTES = 32

_COLUMNS = (
    "id, owner, url, events, description, secret, created_at, position, attempts, "
    "next_attempt_at, failing_since"
)
_DELIVERY_COLUMNS = (
    "subscription_id, event_id, position, event_type, attempt, status, response_code, "
    "error, attempted_at, duration_ms, next_retry_at, event_at"
)


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
    """The tables above, on an application's datastore (`WebhookStore(app)`)."""

    def __init__(self, app_or_datastore: Any, *, create: bool = True) -> None:
        datastore = getattr(getattr(app_or_datastore, "recorder", None), "datastore", None)
        self._sql = _Sql(datastore or app_or_datastore)
        if create:
            self.create_tables()

    @property
    def postgres(self) -> bool:
        return self._sql.postgres

    def create_tables(self) -> None:
        s = self._sql
        real = "double precision" if s.postgres else "REAL"
        serial = "bigserial PRIMARY KEY" if s.postgres else "INTEGER PRIMARY KEY AUTOINCREMENT"
        with s.ddl() as c:
            c.execute(
                s.q(
                    "CREATE TABLE IF NOT EXISTS {t} ("
                    "id text PRIMARY KEY, owner text NOT NULL, url text NOT NULL, "
                    "events text NOT NULL, description text, secret text NOT NULL, "
                    f"created_at {real} NOT NULL, position bigint NOT NULL, "
                    f"attempts integer NOT NULL DEFAULT 0, next_attempt_at {real} NOT NULL, "
                    f"failing_since {real}, claimed_by text, lease_until {real})",
                    t=SUBSCRIPTIONS_TABLE,
                )
            )
            c.execute(
                f'CREATE INDEX IF NOT EXISTS "{SUBSCRIPTIONS_TABLE}_owner_idx" '
                f"ON {s.table(SUBSCRIPTIONS_TABLE)} (owner)"
            )
            c.execute(
                s.q(
                    f"CREATE TABLE IF NOT EXISTS {{t}} (id {serial}, "
                    "subscription_id text NOT NULL, event_id text NOT NULL, "
                    "position bigint NOT NULL, event_type text NOT NULL, "
                    "attempt integer NOT NULL, status text NOT NULL, response_code integer, "
                    f"error text, attempted_at {real} NOT NULL, duration_ms integer NOT NULL, "
                    f"next_retry_at {real}, event_at {real} NOT NULL)",
                    t=DELIVERIES_TABLE,
                )
            )
            c.execute(
                f'CREATE INDEX IF NOT EXISTS "{DELIVERIES_TABLE}_subscription_idx" '
                f"ON {s.table(DELIVERIES_TABLE)} (subscription_id, id)"
            )
            c.execute(
                f'CREATE INDEX IF NOT EXISTS "{DELIVERIES_TABLE}_attempted_idx" '
                f"ON {s.table(DELIVERIES_TABLE)} (attempted_at)"
            )

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
        s = self._sql
        sub = Subscription(
            id=str(uuid.uuid4()), owner=owner, url=url, events=tuple(events),
            description=description, secret=new_secret(), created_at=now, position=position,
            attempts=0, next_attempt_at=now, failing_since=None,
        )  # fmt: skip
        with s.transaction(commit=True) as c:
            c.execute(
                s.q("SELECT count(*) AS n FROM {t} WHERE owner = ?", t=SUBSCRIPTIONS_TABLE),
                (owner,),
            )
            if int(c.fetchone()["n"]) >= MAX_SUBSCRIPTIONS_PER_OWNER:
                raise TooManySubscriptions(owner)
            c.execute(
                s.q(
                    f"INSERT INTO {{t}} ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    t=SUBSCRIPTIONS_TABLE,
                ),
                (
                    *(sub.id, owner, url, json.dumps(list(events)), description, sub.secret),
                    *(now, position, 0, now, None),
                ),
            )
        return sub

    def positions(self) -> list[int]:
        """Every subscription's position (for the delivery lag metrics)."""
        s = self._sql
        with s.transaction(commit=False) as c:
            c.execute(s.q("SELECT position FROM {t}", t=SUBSCRIPTIONS_TABLE))
            return [int(r["position"]) for r in c.fetchall()]

    def owned(self, owner: str) -> list[Subscription]:
        s = self._sql
        with s.transaction(commit=False) as c:
            c.execute(
                s.q(
                    f"SELECT {_COLUMNS} FROM {{t}} WHERE owner = ? ORDER BY created_at, id",
                    t=SUBSCRIPTIONS_TABLE,
                ),
                (owner,),
            )
            return [Subscription.from_row(r) for r in c.fetchall()]

    def get(self, owner: str | None, subscription_id: str) -> Subscription | None:
        """The subscription, if it exists and (unless `owner` is None) is `owner`'s."""
        s = self._sql
        with s.transaction(commit=False) as c:
            c.execute(
                s.q(f"SELECT {_COLUMNS} FROM {{t}} WHERE id = ?", t=SUBSCRIPTIONS_TABLE),
                (subscription_id,),
            )
            row = c.fetchone()
        if row is None or (owner is not None and row["owner"] != owner):
            return None
        return Subscription.from_row(row)

    def delete(self, owner: str, subscription_id: str) -> bool:
        s = self._sql
        with s.transaction(commit=True) as c:
            c.execute(
                s.q("DELETE FROM {t} WHERE id = ? AND owner = ?", t=SUBSCRIPTIONS_TABLE),
                (subscription_id, owner),
            )
            if _rowcount(c) != 1:
                return False
            c.execute(
                s.q("DELETE FROM {t} WHERE subscription_id = ?", t=DELIVERIES_TABLE),
                (subscription_id,),
            )
        return True

    def replay(self, owner: str, subscription_id: str, after: int, now: float) -> bool:
        """Moves the subscription back (or forward) to deliver what follows `after`; a
        delivery in flight loses its claim and records nothing more."""
        s = self._sql
        with s.transaction(commit=True) as c:
            c.execute(
                s.q(
                    "UPDATE {t} SET position = ?, attempts = 0, next_attempt_at = ?, "
                    "failing_since = NULL, claimed_by = NULL, lease_until = NULL "
                    "WHERE id = ? AND owner = ?",
                    t=SUBSCRIPTIONS_TABLE,
                ),
                (after, now, subscription_id, owner),
            )
            return bool(_rowcount(c) == 1)

    def deliveries(
        self, subscription_id: str, *, limit: int, before: int | None = None
    ) -> list[LoggedAttempt]:
        """The subscription's attempts, newest first."""
        s = self._sql
        where = "subscription_id = ?" + ("" if before is None else " AND id < ?")
        params: tuple[Any, ...] = (subscription_id,)
        if before is not None:
            params += (before,)
        with s.transaction(commit=False) as c:
            c.execute(
                s.q(
                    f"SELECT id, {_DELIVERY_COLUMNS} FROM {{t}} WHERE {where} "
                    "ORDER BY id DESC LIMIT ?",
                    t=DELIVERIES_TABLE,
                ),
                (*params, limit),
            )
            rows = c.fetchall()
        return [_logged(r) for r in rows]

    def purge_deliveries(self, older_than: float) -> int:
        s = self._sql
        with s.transaction(commit=True) as c:
            statement = s.q("DELETE FROM {t} WHERE attempted_at < ?", t=DELIVERIES_TABLE)
            c.execute(statement, (older_than,))
            return int(_rowcount(c))

    # The delivery process ----------------------------------------------------------------

    def claim(self, token: str, *, below: int, now: float, lease: float) -> Subscription | None:
        """Claims the subscription due longest, not claimed by a live process, with events
        to deliver (position below the feed's end `below`); None if there is none."""
        s = self._sql
        skip_locked = " FOR UPDATE SKIP LOCKED" if s.postgres else ""
        with s.transaction(commit=True) as c:
            c.execute(
                s.q(
                    "UPDATE {t} SET claimed_by = ?, lease_until = ? WHERE id = ("
                    "SELECT id FROM {t} WHERE next_attempt_at <= ? AND position < ? "
                    "AND (lease_until IS NULL OR lease_until < ?) "
                    f"ORDER BY next_attempt_at LIMIT 1{skip_locked}) RETURNING {_COLUMNS}",
                    t=SUBSCRIPTIONS_TABLE,
                ),
                (token, now + lease, now, below, now),
            )
            row = c.fetchone()
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
        s = self._sql
        sets, params = ["position = ?"], list[Any]([passed])
        if failure is not None:
            # failing since this attempt, unless the same event failed before
            since = "?" if delivered else "COALESCE(failing_since, ?)"
            sets.append(
                f"attempts = ?, next_attempt_at = ?, failing_since = {since}, "
                "claimed_by = NULL, lease_until = NULL"
            )
            params += [failure.attempt, failure.next_retry_at, now]
        else:
            if delivered:
                sets.append("attempts = 0, failing_since = NULL")
            if keep_until is not None:
                sets.append("lease_until = ?")
                params.append(keep_until)
            else:
                sets.append("next_attempt_at = ?, claimed_by = NULL, lease_until = NULL")
                params.append(now)
        with s.transaction(commit=True) as c:
            c.execute(
                s.q(
                    f"UPDATE {{t}} SET {', '.join(sets)} WHERE id = ? AND claimed_by = ?",
                    t=SUBSCRIPTIONS_TABLE,
                ),
                (*params, sub.id, token),
            )
            if _rowcount(c) != 1:
                return False
            attempts = [*delivered, *([failure] if failure is not None else [])]
            if attempts:
                c.executemany(
                    s.q(
                        f"INSERT INTO {{t}} ({_DELIVERY_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        t=DELIVERIES_TABLE,
                    ),
                    [a.row(sub.id) for a in attempts],
                )
        return True


def _rowcount(cursor: Any) -> int:
    """Rows the last statement changed (eventsourcing wraps SQLite's cursor)."""
    inner = getattr(cursor, "sqlite_cursor", cursor)
    return int(inner.rowcount)


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
