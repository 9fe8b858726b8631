"""The delivery tables: webhook subscriptions and their log, and the event relay's positions.

services.dispute.delivery.store describes `webhook_subscriptions` and `webhook_deliveries`;
services.dispute.delivery.jetstream describes `event_relay_positions`. Times are seconds
since the epoch (float) in these tables. Rows come back as mappings of column to value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from .tables import TableRecorder

SUBSCRIPTIONS_TABLE = "webhook_subscriptions"
DELIVERIES_TABLE = "webhook_deliveries"
POSITIONS_TABLE = "event_relay_positions"

SUBSCRIPTION_COLUMNS = (
    "id, owner, url, events, description, secret, created_at, position, attempts, "
    "next_attempt_at, failing_since"
)
DELIVERY_COLUMNS = (
    "subscription_id, event_id, position, event_type, attempt, status, response_code, "
    "error, attempted_at, duration_ms, next_retry_at, event_at"
)


def _marks(p: str, columns: str) -> str:
    return ", ".join([p] * len(columns.split(", ")))


class WebhookRecorder(TableRecorder):
    # What `claim`'s inner SELECT adds so that claimers do not wait on each other.
    claim_lock: ClassVar[str]

    def create_tables(self) -> None:
        real, subs, log = (
            self.real_type,
            self.table(SUBSCRIPTIONS_TABLE),
            self.table(DELIVERIES_TABLE),
        )
        with self.ddl() as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {subs} ("
                "id text PRIMARY KEY, owner text NOT NULL, url text NOT NULL, "
                "events text NOT NULL, description text, secret text NOT NULL, "
                f"created_at {real} NOT NULL, position bigint NOT NULL, "
                f"attempts integer NOT NULL DEFAULT 0, next_attempt_at {real} NOT NULL, "
                f"failing_since {real}, claimed_by text, lease_until {real})"
            )
            c.execute(
                f'CREATE INDEX IF NOT EXISTS "{SUBSCRIPTIONS_TABLE}_owner_idx" ON {subs} (owner)'
            )
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {log} (id {self.serial_key}, "
                "subscription_id text NOT NULL, event_id text NOT NULL, "
                "position bigint NOT NULL, event_type text NOT NULL, "
                "attempt integer NOT NULL, status text NOT NULL, response_code integer, "
                f"error text, attempted_at {real} NOT NULL, duration_ms integer NOT NULL, "
                f"next_retry_at {real}, event_at {real} NOT NULL)"
            )
            c.execute(
                f'CREATE INDEX IF NOT EXISTS "{DELIVERIES_TABLE}_subscription_idx" '
                f"ON {log} (subscription_id, id)"
            )
            c.execute(
                f'CREATE INDEX IF NOT EXISTS "{DELIVERIES_TABLE}_attempted_idx" '
                f"ON {log} (attempted_at)"
            )

    # Subscriptions ---------------------------------------------------------------------

    def insert_subscription(self, row: Sequence[Any], owner: str, at_most: int) -> bool:
        """Inserts a row of SUBSCRIPTION_COLUMNS unless `owner` has `at_most` already."""
        p, subs = self.p, self.table(SUBSCRIPTIONS_TABLE)
        with self.transaction(commit=True) as c:
            c.execute(f"SELECT count(*) AS n FROM {subs} WHERE owner = {p}", (owner,))
            if int(c.fetchone()["n"]) >= at_most:
                return False
            c.execute(
                f"INSERT INTO {subs} ({SUBSCRIPTION_COLUMNS}) "
                f"VALUES ({_marks(p, SUBSCRIPTION_COLUMNS)})",
                tuple(row),
            )
        return True

    def positions(self) -> list[int]:
        with self.transaction(commit=False) as c:
            c.execute(f"SELECT position FROM {self.table(SUBSCRIPTIONS_TABLE)}")
            return [int(r["position"]) for r in c.fetchall()]

    def owned(self, owner: str) -> list[Any]:
        with self.transaction(commit=False) as c:
            c.execute(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM {self.table(SUBSCRIPTIONS_TABLE)} "
                f"WHERE owner = {self.p} ORDER BY created_at, id",
                (owner,),
            )
            return list(c.fetchall())

    def subscription(self, subscription_id: str) -> Any:
        with self.transaction(commit=False) as c:
            c.execute(
                f"SELECT {SUBSCRIPTION_COLUMNS} FROM {self.table(SUBSCRIPTIONS_TABLE)} "
                f"WHERE id = {self.p}",
                (subscription_id,),
            )
            return c.fetchone()

    def delete(self, owner: str, subscription_id: str) -> bool:
        p = self.p
        with self.transaction(commit=True) as c:
            c.execute(
                f"DELETE FROM {self.table(SUBSCRIPTIONS_TABLE)} WHERE id = {p} AND owner = {p}",
                (subscription_id, owner),
            )
            if self.rowcount(c) != 1:
                return False
            c.execute(
                f"DELETE FROM {self.table(DELIVERIES_TABLE)} WHERE subscription_id = {p}",
                (subscription_id,),
            )
        return True

    def replay(self, owner: str, subscription_id: str, after: int, now: float) -> bool:
        p = self.p
        with self.transaction(commit=True) as c:
            c.execute(
                f"UPDATE {self.table(SUBSCRIPTIONS_TABLE)} SET position = {p}, attempts = 0, "
                f"next_attempt_at = {p}, failing_since = NULL, claimed_by = NULL, "
                f"lease_until = NULL WHERE id = {p} AND owner = {p}",
                (after, now, subscription_id, owner),
            )
            return bool(self.rowcount(c) == 1)

    # The log ---------------------------------------------------------------------------

    def deliveries(self, subscription_id: str, *, limit: int, before: int | None) -> list[Any]:
        p = self.p
        where = f"subscription_id = {p}" + ("" if before is None else f" AND id < {p}")
        params: tuple[Any, ...] = (subscription_id,)
        if before is not None:
            params += (before,)
        with self.transaction(commit=False) as c:
            c.execute(
                f"SELECT id, {DELIVERY_COLUMNS} FROM {self.table(DELIVERIES_TABLE)} "
                f"WHERE {where} ORDER BY id DESC LIMIT {p}",
                (*params, limit),
            )
            return list(c.fetchall())

    def purge_deliveries(self, older_than: float) -> int:
        with self.transaction(commit=True) as c:
            c.execute(
                f"DELETE FROM {self.table(DELIVERIES_TABLE)} WHERE attempted_at < {self.p}",
                (older_than,),
            )
            return self.rowcount(c)

    # The delivery process --------------------------------------------------------------

    def claim(self, token: str, *, below: int, now: float, lease: float) -> Any:
        p, subs = self.p, self.table(SUBSCRIPTIONS_TABLE)
        with self.transaction(commit=True) as c:
            c.execute(
                f"UPDATE {subs} SET claimed_by = {p}, lease_until = {p} WHERE id = ("
                f"SELECT id FROM {subs} WHERE next_attempt_at <= {p} AND position < {p} "
                f"AND (lease_until IS NULL OR lease_until < {p}) "
                f"ORDER BY next_attempt_at LIMIT 1{self.claim_lock}) "
                f"RETURNING {SUBSCRIPTION_COLUMNS}",
                (token, now + lease, now, below, now),
            )
            return c.fetchone()

    def record(
        self,
        subscription_id: str,
        token: str,
        *,
        passed: int,
        now: float,
        delivered: bool,
        failure: tuple[int, float | None] | None,
        keep_until: float | None,
        attempts: Sequence[Sequence[Any]],
    ) -> bool:
        """If `token` still holds the claim, in one transaction: moves the position to
        `passed` and logs the `attempts` (rows of DELIVERY_COLUMNS). With a `failure`
        (its attempt number and retry time), schedules the retry and lets the claim go;
        with `keep_until`, keeps the claim until then; else lets it go, due again at
        `now`. Returns whether the claim held (if not, nothing is recorded)."""
        p = self.p
        sets, params = [f"position = {p}"], list[Any]([passed])
        if failure is not None:
            # failing since this attempt, unless the same event failed before
            since = p if delivered else f"COALESCE(failing_since, {p})"
            sets.append(
                f"attempts = {p}, next_attempt_at = {p}, failing_since = {since}, "
                "claimed_by = NULL, lease_until = NULL"
            )
            params += [failure[0], failure[1], now]
        else:
            if delivered:
                sets.append("attempts = 0, failing_since = NULL")
            if keep_until is not None:
                sets.append(f"lease_until = {p}")
                params.append(keep_until)
            else:
                sets.append(f"next_attempt_at = {p}, claimed_by = NULL, lease_until = NULL")
                params.append(now)
        with self.transaction(commit=True) as c:
            c.execute(
                f"UPDATE {self.table(SUBSCRIPTIONS_TABLE)} SET {', '.join(sets)} "
                f"WHERE id = {p} AND claimed_by = {p}",
                (*params, subscription_id, token),
            )
            if self.rowcount(c) != 1:
                return False
            if attempts:
                c.executemany(
                    f"INSERT INTO {self.table(DELIVERIES_TABLE)} ({DELIVERY_COLUMNS}) "
                    f"VALUES ({_marks(p, DELIVERY_COLUMNS)})",
                    [tuple(a) for a in attempts],
                )
        return True


class RelayPositionRecorder(TableRecorder):
    """Relay positions with a lease each."""

    def create_table(self) -> None:
        with self.ddl() as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {self.table(POSITIONS_TABLE)} (name text PRIMARY KEY, "
                f"position bigint NOT NULL, claimed_by text, lease_until {self.real_type})"
            )

    def claim(self, name: str, token: str, *, now: float, lease: float) -> int | None:
        p, t = self.p, self.table(POSITIONS_TABLE)
        with self.transaction(commit=True) as c:
            c.execute(
                f"INSERT INTO {t} (name, position) VALUES ({p}, 0) ON CONFLICT (name) DO NOTHING",
                (name,),
            )
            c.execute(
                f"UPDATE {t} SET claimed_by = {p}, lease_until = {p} WHERE name = {p} AND "
                f"(claimed_by = {p} OR lease_until IS NULL OR lease_until < {p}) "
                "RETURNING position",
                (token, now + lease, name, token, now),
            )
            row = c.fetchone()
        return None if row is None else int(row["position"])

    def advance(self, name: str, token: str, position: int, *, lease_until: float) -> bool:
        p, t = self.p, self.table(POSITIONS_TABLE)
        with self.transaction(commit=True) as c:
            c.execute(
                f"UPDATE {t} SET position = {p}, lease_until = {p} "
                f"WHERE name = {p} AND claimed_by = {p}",
                (position, lease_until, name, token),
            )
            c.execute(f"SELECT claimed_by FROM {t} WHERE name = {p}", (name,))
            row = c.fetchone()
        return row is not None and row["claimed_by"] == token

    def release(self, name: str, token: str) -> None:
        p = self.p
        with self.transaction(commit=True) as c:
            c.execute(
                f"UPDATE {self.table(POSITIONS_TABLE)} SET claimed_by = NULL, lease_until = NULL "
                f"WHERE name = {p} AND claimed_by = {p}",
                (name, token),
            )

    def position(self, name: str) -> int:
        with self.transaction(commit=False) as c:
            c.execute(
                f"SELECT position FROM {self.table(POSITIONS_TABLE)} WHERE name = {self.p}",
                (name,),
            )
            row = c.fetchone()
        return 0 if row is None else int(row["position"])
