"""SQLite (the embedded default): eventsourcing's recorder plus idempotent responses.

Select with `PERSISTENCE_MODULE=services.dispute.infrastructure.sqlite`. The response
row is written in the events' transaction, as on PostgreSQL.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from eventsourcing import sqlite as es_sqlite
from eventsourcing.persistence import StoredEvent

from ..hashchain import GENESIS, chain
from ..idempotency import (
    Claim,
    Claimed,
    ClaimResult,
    Completion,
    IdempotencyStore,
    InProgress,
    Replay,
    Reused,
    StoredResponse,
    response_params,
)


class IdempotentSQLiteApplicationRecorder(es_sqlite.SQLiteApplicationRecorder, IdempotencyStore):
    def __init__(
        self,
        datastore: es_sqlite.SQLiteDatastore,
        events_table_name: str = "stored_events",
    ) -> None:
        self.claims_table = f"{events_table_name}_idempotency_claims"
        self.responses_table = f"{events_table_name}_idempotency_responses"
        self.hashes_table = f"{events_table_name}_hashes"
        super().__init__(datastore, events_table_name)
        columns = "(principal, key, fingerprint, status, headers, body, created_at)"
        self._insert_response = (
            f"INSERT INTO {self.responses_table} {columns} VALUES (?, ?, ?, ?, ?, ?, ?)"
        )
        self._insert_response_if_absent = (
            f"INSERT OR IGNORE INTO {self.responses_table} {columns} VALUES (?, ?, ?, ?, ?, ?, ?)"
        )

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.claims_table} ("
            "principal TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, "
            "token TEXT NOT NULL, lease_until REAL NOT NULL, created_at REAL NOT NULL, "
            "PRIMARY KEY (principal, key))",
            f"CREATE TABLE IF NOT EXISTS {self.responses_table} ("
            "principal TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, "
            "status INTEGER NOT NULL, headers TEXT NOT NULL, body BLOB NOT NULL, "
            "created_at REAL NOT NULL, PRIMARY KEY (principal, key))",
            f"CREATE INDEX IF NOT EXISTS {self.responses_table}_created_idx "
            f"ON {self.responses_table} (created_at)",
            # Tamper evidence (services.dispute.audit): the hash chain, written with the
            # events. SQLite cannot refuse changes to its own file: they are detectable.
            f"CREATE TABLE IF NOT EXISTS {self.hashes_table} ("
            "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, "
            "hash BLOB NOT NULL, PRIMARY KEY (originator_id, originator_version)) "
            "WITHOUT ROWID",
        ]

    def _insert_events(
        self,
        c: es_sqlite.SQLiteCursor,
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> Sequence[int] | None:
        completion = kwargs.get("idempotency")
        if completion is not None:
            assert isinstance(completion, Completion)
            # A second completion of the key violates the primary key and rolls the
            # whole transaction back, events included.
            c.execute(self._insert_response, response_params(completion, time.time()))
        returning = super()._insert_events(c, stored_events, **kwargs)
        self._insert_hashes(c, stored_events)
        return returning

    def _insert_hashes(
        self, c: es_sqlite.SQLiteCursor, stored_events: Sequence[StoredEvent]
    ) -> None:
        # In the events' (write-locked) transaction: committed if and only if they are.
        by_aggregate: dict[str, list[StoredEvent]] = {}
        for event in stored_events:
            by_aggregate.setdefault(_key(event.originator_id), []).append(event)
        for key, events in by_aggregate.items():
            events.sort(key=lambda e: e.originator_version)
            c.execute(
                f"SELECT hash FROM {self.hashes_table} WHERE originator_id = ? "
                "AND originator_version < ? ORDER BY originator_version DESC LIMIT 1",
                (key, events[0].originator_version),
            )
            row = c.fetchone()
            previous = bytes(row["hash"]) if row is not None else GENESIS
            for event, digest in zip(events, chain(events, previous), strict=True):
                c.execute(
                    f"INSERT INTO {self.hashes_table} (originator_id, originator_version, hash) "
                    "VALUES (?, ?, ?)",
                    (key, event.originator_version, digest),
                )

    def select_hashes(self, originator_id: Any) -> list[tuple[int, bytes]]:
        """The recorded hash chain of one aggregate, by version."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT originator_version, hash FROM {self.hashes_table} "
                "WHERE originator_id = ? ORDER BY originator_version",
                (_key(originator_id),),
            )
            return [(int(r["originator_version"]), bytes(r["hash"])) for r in c.fetchall()]

    def try_claim(self, claim: Claim, now: float, lease_seconds: float) -> ClaimResult:
        p, k = claim.principal, claim.key
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"SELECT fingerprint, status, headers, body FROM {self.responses_table} "
                "WHERE principal = ? AND key = ?",
                (p, k),
            )
            row = c.fetchone()
            if row is not None:
                if row["fingerprint"] != claim.fingerprint:
                    return Reused()
                return Replay(StoredResponse.from_row(row["status"], row["headers"], row["body"]))
            c.execute(
                f"SELECT fingerprint, token, lease_until FROM {self.claims_table} "
                "WHERE principal = ? AND key = ?",
                (p, k),
            )
            held = c.fetchone()
            if held is None:
                c.execute(
                    f"INSERT INTO {self.claims_table} "
                    "(principal, key, fingerprint, token, lease_until, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (p, k, claim.fingerprint, claim.token, now + lease_seconds, now),
                )
                return Claimed(claim)
            if held["fingerprint"] != claim.fingerprint:
                return Reused()
            if held["lease_until"] < now or not owner_alive(held["token"]):
                c.execute(
                    f"UPDATE {self.claims_table} SET token = ?, lease_until = ? "
                    "WHERE principal = ? AND key = ?",
                    (claim.token, now + lease_seconds, p, k),
                )
                return Claimed(claim)
            return InProgress()

    def store_response(self, completion: Completion, now: float) -> StoredResponse:
        claim = completion.claim
        with self.datastore.transaction(commit=True) as c:
            c.execute(self._insert_response_if_absent, response_params(completion, now))
            c.execute(
                f"SELECT status, headers, body FROM {self.responses_table} "
                "WHERE principal = ? AND key = ?",
                (claim.principal, claim.key),
            )
            row = c.fetchone()
        return StoredResponse.from_row(row["status"], row["headers"], row["body"])

    def release(self, claim: Claim) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"DELETE FROM {self.claims_table} WHERE principal = ? AND key = ? AND token = ?",
                (claim.principal, claim.key, claim.token),
            )

    def purge(self, older_than: float) -> int:
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"DELETE FROM {self.responses_table} WHERE created_at < ?", (older_than,))
            purged = int(c.sqlite_cursor.rowcount)
            c.execute(f"DELETE FROM {self.claims_table} WHERE created_at < ?", (older_than,))
        return purged


def owner_alive(token: str) -> bool:
    """Whether the process that took a claim (its pid leads the token) still runs on
    this machine: a claim of a process that died is taken over at once, not after its
    lease (SQLite is local to one machine)."""
    pid_text, _, _ = token.partition("-")
    if not pid_text.isdigit():
        return True  # not ours to judge: wait for the lease
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _key(originator_id: Any) -> str:
    # As eventsourcing stores it: a UUID's hex, else the string.
    return originator_id.hex if isinstance(originator_id, UUID) else str(originator_id)
