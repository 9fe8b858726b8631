"""PostgreSQL: eventsourcing's recorder plus idempotent responses in the events' transaction.

Select with `PERSISTENCE_MODULE=services.dispute.infrastructure.postgres`. Writes keep
eventsourcing's table lock, so notification ids stay in commit order (the feed never
skips a late-committing event); the library's database functions
(`POSTGRES_ENABLE_DB_FUNCTIONS`) skip that lock and the idempotency row, so they are
refused here.

One write is one statement, `SELECT * FROM <events>_append(...)`, in an implicit
transaction: the function inserts the idempotent response and the hash-chain rows, then
takes the table lock, notifies and inserts the events; the statement's commit releases
the lock. The lock is so held only while the server runs the statement and commits,
never across a round trip to this process (where a thread that has sent its INSERT may
wait milliseconds for the GIL before it can send COMMIT, with every other writer queued
behind it). The hashes are computed before the statement, from the aggregate's previous
hash, which was committed before the aggregate could be loaded at that version: this
process remembers the hashes it wrote last, and reads the others.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing import postgres as es_postgres
from eventsourcing.persistence import InterfaceError, Notification, OperationalError, StoredEvent
from psycopg import Connection, Cursor
from psycopg.rows import DictRow

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
from ..pool import (
    OutcomeUnknown,
    ResilientPostgresDatastore,
    first_line,
    translate,
)
from . import statements
from .tables import serialised_ddl

LAST_HASHES_KEPT = 10_000  # aggregates; about 1 MB


def _binary_results(datastore: es_postgres.PostgresDatastore) -> AbstractContextManager[None]:
    if isinstance(datastore, ResilientPostgresDatastore):
        return datastore.binary_results()
    return nullcontext()


class BinaryReadsAggregateRecorder(es_postgres.PostgresAggregateRecorder):
    """The library's recorder, reading events with binary results: the rows are uuid,
    integers, text and bytea, and a large state (a snapshot) arrives as its bytes instead
    of as hexadecimal text (see `ResilientPostgresDatastore.binary_results`). The snapshots'
    recorder, and the base of the events' one."""

    def select_events(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Sequence[StoredEvent]:
        with _binary_results(self.datastore):
            events: Sequence[StoredEvent] = super().select_events(
                originator_id, gt=gt, lte=lte, desc=desc, limit=limit
            )
        return events


class IdempotentPostgresApplicationRecorder(
    BinaryReadsAggregateRecorder, es_postgres.PostgresApplicationRecorder, IdempotencyStore
):
    def __init__(
        self,
        datastore: es_postgres.PostgresDatastore,
        *,
        events_table_name: str = "stored_events",
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        # The hash of each aggregate's latest event this process wrote: the next write to
        # that aggregate chains from it without asking the database. A committed event's
        # hash never changes, so an entry is never wrong, only possibly absent.
        self._last_hashes: OrderedDict[tuple[Any, int], bytes] = OrderedDict()
        self._last_hashes_lock = threading.Lock()
        tables = statements.EventTables(
            schema=datastore.schema,
            events=events_table_name,
            id_type=datastore.originator_id_type,
            event_type=self.stored_event_type_name,
            channel=self.channel_name,
        )
        for name in tables.names():
            self.check_identifier_length(name)
        self.sql_create_statements += statements.create_statements(tables)
        self._append = statements.append(tables)
        self._select_previous_hash = statements.select_previous_hash(tables)
        self._select_hashes = statements.select_hashes(tables)
        self._insert_response = statements.insert_response(tables)
        self._insert_response_if_absent = statements.insert_response_if_absent(tables)
        self._select_response_and_claim = statements.select_response_and_claim(tables)
        self._select_stored_response = statements.select_stored_response(tables)
        self._upsert_claim = statements.upsert_claim(tables)
        self._release_claim = statements.release_claim(tables)
        self._purge_responses = statements.purge_responses(tables)
        self._purge_claims = statements.purge_claims(tables)
        # Claims: a session-level advisory lock per key, held on a connection of its own
        # for as long as the request runs (see `try_claim`); the row beside it only says
        # which request (fingerprint) holds the key.
        self._lock_key_prefix = f"{datastore.schema}.{events_table_name}"
        self._held: dict[str, tuple[Connection[DictRow], int]] = {}
        self._held_lock = threading.Lock()

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> Sequence[Notification]:
        """The library's, with binary results (as `select_events`)."""
        with _binary_results(self.datastore):
            notifications: Sequence[Notification] = super().select_notifications(
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
        return notifications

    # Creating the tables ------------------------------------------------------------

    def create_table(self) -> None:
        """The library's DDL, run by one process at a time (see `serialised_ddl`)."""
        with serialised_ddl(self.datastore, self.events_table_name):
            super().create_table()

    # Events, their hashes and the response: one statement, one transaction -----------

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Writes the events (and the response): not retried here once the statement may
        have reached the server. A connection that breaks after that leaves the outcome
        unknown: `OutcomeUnknown` (a 503), never a retry that would meet its own write
        and answer a refusal for a command that was applied."""
        if not stored_events:  # a response without events: no lock, no hashes
            ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return ids
        completion = kwargs.get("idempotency")
        response: tuple[object, ...] = (None,) * 7
        if completion is not None:
            assert isinstance(completion, Completion)
            response = response_params(completion, _now())
        for attempt in range(2):
            sent = False
            try:
                with self.datastore.get_connection() as conn:
                    hashes = self._hashes(conn, stored_events)
                    events = [
                        self.construct_pg_stored_event(
                            e.originator_id, e.originator_version, e.topic, e.state
                        )
                        for e in stored_events
                    ]
                    lock_timeout = f"{self.datastore.lock_timeout}s"
                    # A second completion of the key, or a version conflict, violates a
                    # primary key: the statement, so everything it wrote, rolls back
                    # (IntegrityError).
                    sent = True
                    rows = conn.execute(
                        self._append, (events, hashes, lock_timeout, *response), prepare=True
                    ).fetchall()
            except (InterfaceError, OperationalError) as error:
                if sent and (conn.closed or conn.broken):
                    raise OutcomeUnknown(
                        f"the connection broke after the write was sent ({first_line(error)}): "
                        "it may have committed"
                    ) from error
                if sent or attempt:
                    raise  # the server refused it (a lock time-out): nothing was written
                continue  # a stale connection broke before the write: once more, fresh
            self._remember_hashes(stored_events, hashes)
            return [row["notification_id"] for row in rows]
        raise AssertionError("unreachable")  # pragma: no cover

    def _remember_hashes(self, stored_events: Sequence[StoredEvent], hashes: list[bytes]) -> None:
        """Keeps each written aggregate's newest hash (committed: the statement returned)."""
        latest: dict[Any, tuple[int, bytes]] = {}
        for event, digest in zip(stored_events, hashes, strict=True):
            if event.originator_version >= latest.get(event.originator_id, (0, b""))[0]:
                latest[event.originator_id] = (event.originator_version, digest)
        with self._last_hashes_lock:
            for originator_id, (version, digest) in latest.items():
                self._last_hashes[(originator_id, version)] = digest
                self._last_hashes.move_to_end((originator_id, version))
            while len(self._last_hashes) > LAST_HASHES_KEPT:
                self._last_hashes.popitem(last=False)

    def _previous_hash(self, conn: Connection[DictRow], originator_id: Any, version: int) -> bytes:
        """The hash of the aggregate's event before `version`: remembered, or read."""
        if version == 1:
            return GENESIS
        with self._last_hashes_lock:
            remembered = self._last_hashes.get((originator_id, version - 1))
        if remembered is not None:
            return remembered
        row = conn.execute(
            self._select_previous_hash, (originator_id, version), prepare=True
        ).fetchone()
        return bytes(row["hash"]) if row is not None else GENESIS

    def _hashes(
        self, conn: Connection[DictRow], stored_events: Sequence[StoredEvent]
    ) -> list[bytes]:
        """Each event's link in its aggregate's hash chain, in the order of `stored_events`."""
        by_aggregate: dict[Any, list[StoredEvent]] = {}
        for event in stored_events:
            by_aggregate.setdefault(event.originator_id, []).append(event)
        digests: dict[tuple[Any, int], bytes] = {}
        for originator_id, events in by_aggregate.items():
            events.sort(key=lambda e: e.originator_version)
            previous = self._previous_hash(conn, originator_id, events[0].originator_version)
            for event, digest in zip(events, chain(events, previous), strict=True):
                digests[(originator_id, event.originator_version)] = digest
        return [digests[(e.originator_id, e.originator_version)] for e in stored_events]

    def _insert_events(
        self,
        curs: Cursor[DictRow],
        stored_events: Sequence[StoredEvent],
        **kwargs: Any,
    ) -> None:
        # Only reached with no events (see insert_events): the response alone.
        completion = kwargs.get("idempotency")
        if completion is not None:
            assert isinstance(completion, Completion)
            curs.execute(self._insert_response, response_params(completion, _now()))
        super()._insert_events(curs, stored_events, **kwargs)

    def select_hashes(self, originator_id: Any) -> list[tuple[int, bytes]]:
        """The recorded hash chain of one aggregate, by version."""
        with self.datastore.get_connection() as conn:
            rows = conn.execute(self._select_hashes, (originator_id,)).fetchall()
        return [(int(r["originator_version"]), bytes(r["hash"])) for r in rows]

    # IdempotencyStore ---------------------------------------------------------------

    def try_claim(self, claim: Claim, now: float, lease_seconds: float) -> ClaimResult:
        """Claims the key with a session-level advisory lock, on a connection held until
        `release`. A claim so lives exactly as long as the claiming session: if the
        process dies or its connection breaks, PostgreSQL drops the lock at once and a
        retry executes (`lease_seconds` is not needed here). The response is read only
        after the lock is taken, in a statement of its own (a newer snapshot), so a
        holder that completed just before is seen."""
        p, k = claim.principal, claim.key
        lock_key = self._lock_key(p, k)
        conn = self._acquire()
        keep = False
        try:
            got = conn.execute("SELECT pg_try_advisory_lock(%s) AS locked", (lock_key,))
            locked = bool(got.fetchone()["locked"])  # type: ignore[index]
            row = conn.execute(self._select_response_and_claim, (p, k, p, k)).fetchone()
            assert row is not None
            if row["status"] is not None:
                if locked:
                    self._unlock(conn, lock_key)
                if row["fingerprint"] != claim.fingerprint:
                    return Reused()
                return Replay(StoredResponse.from_row(row["status"], row["headers"], row["body"]))
            if not locked:
                held_by = row["claimed_by"]
                return Reused() if held_by not in (None, claim.fingerprint) else InProgress()
            conn.execute(
                self._upsert_claim,
                (p, k, claim.fingerprint, claim.token, now + lease_seconds, now),
            )
            with self._held_lock:
                self._held[claim.token] = (conn, lock_key)
            keep = True
            return Claimed(claim)
        except psycopg.Error as error:
            raise translate(error) from error
        finally:
            if not keep:
                self._give_back(conn)

    def store_response(self, completion: Completion, now: float) -> StoredResponse:
        claim = completion.claim
        with self.datastore.get_connection() as conn:
            conn.execute(self._insert_response_if_absent, response_params(completion, now))
            row = conn.execute(
                self._select_stored_response, (claim.principal, claim.key)
            ).fetchone()
        assert row is not None
        return StoredResponse.from_row(row["status"], row["headers"], row["body"])

    def release(self, claim: Claim) -> None:
        """Unlocks the key and gives its connection back. If that fails, the connection
        is closed: its session, and with it the lock, ends."""
        with self._held_lock:
            held = self._held.pop(claim.token, None)
        if held is None:
            return
        conn, lock_key = held
        try:
            conn.execute(
                self._release_claim, (claim.principal, claim.key, claim.token, lock_key)
            ).fetchone()
        except psycopg.Error:
            conn.close()
        finally:
            self._give_back(conn)

    def _lock_key(self, principal: str, key: str) -> int:
        text = f"{self._lock_key_prefix}\0{principal}\0{key}".encode()
        return int.from_bytes(hashlib.sha256(text).digest()[:8], "big", signed=True)

    def _unlock(self, conn: Connection[DictRow], lock_key: int) -> None:
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key,))
        except psycopg.Error:
            conn.close()  # never return a session that may still hold the lock
            raise

    def _acquire(self) -> Connection[DictRow]:
        datastore = self.datastore
        if isinstance(datastore, ResilientPostgresDatastore):
            return datastore.acquire()
        datastore.pool.open(datastore.pool_open_timeout is not None, 30.0)
        try:
            return datastore.pool.getconn()
        except psycopg.Error as error:
            raise translate(error) from error

    def _give_back(self, conn: Connection[DictRow]) -> None:
        self.datastore.pool.putconn(conn)

    def purge(self, older_than: float) -> int:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._purge_responses, (older_than,))
            purged = curs.rowcount
            curs.execute(self._purge_claims, (older_than,))
        return purged


def _now() -> float:
    return time.time()
