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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing import postgres as es_postgres
from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.utils import Environment, EnvType, retry
from psycopg import Connection, Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier, Literal

from services.dispute.audit import GENESIS, chain

from .idempotency import (
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

LAST_HASHES_KEPT = 10_000  # aggregates; about 1 MB


class IdempotentPostgresApplicationRecorder(
    es_postgres.PostgresApplicationRecorder, IdempotencyStore
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
        claims_name = f"{events_table_name}_idempotency_claims"
        responses_name = f"{events_table_name}_idempotency_responses"
        hashes_name = f"{events_table_name}_hashes"
        append_name = f"{events_table_name}_append"
        self.check_identifier_length(append_name)
        self.check_identifier_length(claims_name)
        self.check_identifier_length(responses_name)
        self.check_identifier_length(hashes_name)
        self.check_identifier_length(f"{events_table_name}_append_only")
        fmt = {
            "schema": Identifier(datastore.schema),
            "claims": Identifier(claims_name),
            "responses": Identifier(responses_name),
            "index": Identifier(f"{responses_name}_created_idx"),
            "events": Identifier(events_table_name),
            "hashes": Identifier(hashes_name),
            "id_type": Identifier(datastore.originator_id_type),
            "guard": Identifier(f"{events_table_name}_append_only"),
        }
        self.sql_create_statements += [
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{claims} ("
                "principal text NOT NULL, key text NOT NULL, fingerprint text NOT NULL, "
                "token text NOT NULL, lease_until double precision NOT NULL, "
                "created_at double precision NOT NULL, PRIMARY KEY (principal, key))"
            ).format(**fmt),
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{responses} ("
                "principal text NOT NULL, key text NOT NULL, fingerprint text NOT NULL, "
                "status integer NOT NULL, headers text NOT NULL, body bytea NOT NULL, "
                "created_at double precision NOT NULL, PRIMARY KEY (principal, key))"
            ).format(**fmt),
            SQL("CREATE INDEX IF NOT EXISTS {index} ON {schema}.{responses} (created_at)").format(
                **fmt
            ),
        ]
        # Tamper evidence (services.dispute.audit): the hash chain, written with the events.
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{hashes} ("
                "originator_id {id_type} NOT NULL, originator_version bigint NOT NULL, "
                "hash bytea NOT NULL, PRIMARY KEY (originator_id, originator_version))"
            ).format(**fmt)
        )
        # One write, one statement (see the module's docstring).
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{append}("
                "p_events {schema}.{event_type}[], p_hashes bytea[], p_lock_timeout text, "
                "r_principal text, r_key text, r_fingerprint text, r_status integer, "
                "r_headers text, r_body bytea, r_created_at double precision) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$ BEGIN "
                "IF r_principal IS NOT NULL THEN "
                "INSERT INTO {schema}.{responses} "
                "(principal, key, fingerprint, status, headers, body, created_at) VALUES "
                "(r_principal, r_key, r_fingerprint, r_status, r_headers, r_body, r_created_at); "
                "END IF; "
                "INSERT INTO {schema}.{hashes} (originator_id, originator_version, hash) "
                "SELECT (p_events[i]).originator_id, (p_events[i]).originator_version, p_hashes[i] "
                "FROM generate_subscripts(p_events, 1) AS i; "
                "PERFORM set_config('lock_timeout', p_lock_timeout, true); "
                "LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE; "
                "NOTIFY {channel}; "
                "RETURN QUERY INSERT INTO {schema}.{events} "
                "(originator_id, originator_version, topic, state) "
                "SELECT (e).originator_id, (e).originator_version, (e).topic, (e).state "
                "FROM unnest(p_events) AS e RETURNING notification_id; "
                "END $fn$"
            ).format(
                **fmt,
                append=Identifier(append_name),
                event_type=Identifier(self.stored_event_type_name),
                channel=Identifier(self.channel_name),
            )
        )
        self._append = SQL(
            "SELECT * FROM {schema}.{append}(%s::{schema}.{event_type}[], %s::bytea[], %s, "
            "%s, %s, %s, %s, %s, %s, %s) AS ids(notification_id)"
        ).format(
            **fmt,
            append=Identifier(append_name),
            event_type=Identifier(self.stored_event_type_name),
        )
        # History is append-only for every role that is not allowed to disable triggers
        # (the table owner or a superuser can: see the README, "Tamper evidence").
        self.sql_create_statements.append(
            SQL(
                "DO $do$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = {schema_name} AND p.proname = {guard_name}) THEN "
                "CREATE FUNCTION {schema}.{guard}() RETURNS trigger "
                "LANGUAGE plpgsql AS $fn$ BEGIN "
                "RAISE EXCEPTION 'stored history is append-only: % on % refused', "
                "TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; "
                "END $fn$; END IF; END $do$"
            ).format(
                **fmt,
                schema_name=Literal(datastore.schema),
                guard_name=Literal(f"{events_table_name}_append_only"),
            )
        )
        for table in (events_table_name, hashes_name):
            names = {
                **fmt,
                "table": Identifier(table),
                "table_name": Literal(table),
                "schema_name": Literal(datastore.schema),
            }
            for suffix, when in (("_no_change", "UPDATE OR DELETE"), ("_no_truncate", "TRUNCATE")):
                names["trigger"] = Identifier(f"{table}{suffix}"[:63])
                names["trigger_name"] = Literal(f"{table}{suffix}"[:63])
                level = "ROW" if suffix == "_no_change" else "STATEMENT"
                self.sql_create_statements.append(
                    SQL(
                        "DO $do$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger t "
                        "JOIN pg_class c ON c.oid = t.tgrelid "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = {schema_name} AND c.relname = {table_name} "
                        "AND t.tgname = {trigger_name}) THEN "
                        "CREATE TRIGGER {trigger} BEFORE " + when + " ON {schema}.{table} "
                        "FOR EACH " + level + " EXECUTE FUNCTION {schema}.{guard}(); "
                        "END IF; END $do$"
                    ).format(**names)
                )
        self._select_previous_hash = SQL(
            "SELECT hash FROM {schema}.{hashes} WHERE originator_id = %s "
            "AND originator_version < %s ORDER BY originator_version DESC LIMIT 1"
        ).format(**fmt)
        self._select_hashes = SQL(
            "SELECT originator_version, hash FROM {schema}.{hashes} "
            "WHERE originator_id = %s ORDER BY originator_version"
        ).format(**fmt)
        self._insert_response = SQL(
            "INSERT INTO {schema}.{responses} "
            "(principal, key, fingerprint, status, headers, body, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)"
        ).format(**fmt)
        self._insert_response_if_absent = self._insert_response + SQL(" ON CONFLICT DO NOTHING")
        self._select_response = SQL(
            "SELECT fingerprint, status, headers, body FROM {schema}.{responses} "
            "WHERE principal = %s AND key = %s"
        ).format(**fmt)
        self._insert_claim = SQL(
            "INSERT INTO {schema}.{claims} "
            "(principal, key, fingerprint, token, lease_until, created_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"
        ).format(**fmt)
        self._select_claim = SQL(
            "SELECT fingerprint, token, lease_until FROM {schema}.{claims} "
            "WHERE principal = %s AND key = %s"
        ).format(**fmt)
        self._take_over_claim = SQL(
            "UPDATE {schema}.{claims} SET token = %s, lease_until = %s "
            "WHERE principal = %s AND key = %s AND token = %s"
        ).format(**fmt)
        self._delete_claim = SQL(
            "DELETE FROM {schema}.{claims} WHERE principal = %s AND key = %s AND token = %s"
        ).format(**fmt)
        self._purge_responses = SQL(
            "DELETE FROM {schema}.{responses} WHERE created_at < %s"
        ).format(**fmt)
        self._purge_claims = SQL("DELETE FROM {schema}.{claims} WHERE created_at < %s").format(
            **fmt
        )

    # Creating the tables ------------------------------------------------------------

    def create_table(self) -> None:
        """The library's DDL, run by one process at a time (see `serialised_ddl`)."""
        with serialised_ddl(self.datastore, self.events_table_name):
            super().create_table()

    # Events, their hashes and the response: one statement, one transaction -----------

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:  # a response without events: no lock, no hashes
            return super().insert_events(stored_events, **kwargs)
        completion = kwargs.get("idempotency")
        response: tuple[object, ...] = (None,) * 7
        if completion is not None:
            assert isinstance(completion, Completion)
            response = response_params(completion, _now())
        with self.datastore.get_connection() as conn:
            hashes = self._hashes(conn, stored_events)
            events = [
                self.construct_pg_stored_event(
                    e.originator_id, e.originator_version, e.topic, e.state
                )
                for e in stored_events
            ]
            lock_timeout = f"{self.datastore.lock_timeout}s"
            # A second completion of the key, or a version conflict, violates a primary
            # key: the statement, so everything it wrote, rolls back (IntegrityError).
            rows = conn.execute(
                self._append, (events, hashes, lock_timeout, *response), prepare=True
            ).fetchall()
        self._remember_hashes(stored_events, hashes)
        return [row["notification_id"] for row in rows]

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
        p, k = claim.principal, claim.key
        with self.datastore.get_connection() as conn:
            for _ in range(3):
                row = conn.execute(self._select_response, (p, k)).fetchone()
                if row is not None:
                    if row["fingerprint"] != claim.fingerprint:
                        return Reused()
                    return Replay(
                        StoredResponse.from_row(row["status"], row["headers"], row["body"])
                    )
                inserted = conn.execute(
                    self._insert_claim,
                    (p, k, claim.fingerprint, claim.token, now + lease_seconds, now),
                )
                if inserted.rowcount == 1:
                    return Claimed(claim)
                held = conn.execute(self._select_claim, (p, k)).fetchone()
                if held is None:
                    continue  # released meanwhile: try again
                if held["fingerprint"] != claim.fingerprint:
                    return Reused()
                if held["lease_until"] < now:
                    taken = conn.execute(
                        self._take_over_claim,
                        (claim.token, now + lease_seconds, p, k, held["token"]),
                    )
                    if taken.rowcount == 1:
                        return Claimed(claim)
                return InProgress()
        return InProgress()

    def store_response(self, completion: Completion, now: float) -> None:
        with self.datastore.get_connection() as conn:
            conn.execute(self._insert_response_if_absent, response_params(completion, now))

    def release(self, claim: Claim) -> None:
        with self.datastore.get_connection() as conn:
            conn.execute(self._delete_claim, (claim.principal, claim.key, claim.token))

    def purge(self, older_than: float) -> int:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._purge_responses, (older_than,))
            purged = curs.rowcount
            curs.execute(self._purge_claims, (older_than,))
        return purged


@contextmanager
def serialised_ddl(datastore: es_postgres.PostgresDatastore, name: str) -> Iterator[None]:
    """Holds a PostgreSQL advisory lock named after `name` in the datastore's schema.

    Processes starting together on an empty database (replicas; the service, worker and
    projector of one deployment) would otherwise run the same CREATE TYPE / TABLE /
    FUNCTION concurrently and fail ("duplicate key", "tuple concurrently updated"); under
    the lock the second finds everything there. It is taken on a connection of its own,
    since the DDL takes pooled ones.
    """
    params = {k: v for k, v in datastore.pool.kwargs.items() if k != "row_factory"}
    digest = hashlib.sha256(f"{datastore.schema}.{name}".encode()).digest()
    key = int.from_bytes(digest[:8], "big", signed=True)
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _now() -> float:
    return time.time()


class Factory(es_postgres.PostgresFactory):
    application_recorder_class = IdempotentPostgresApplicationRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        if self.datastore.enable_db_functions:
            raise OSError(
                "POSTGRES_ENABLE_DB_FUNCTIONS skips the table lock that keeps the event "
                "feed in commit order, and the idempotency row: it is not supported"
            )
        if self.env_create_table():
            # eventsourcing creates its tables in the schema but not the schema itself.
            with self.datastore.get_connection() as conn:
                conn.execute(
                    SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.datastore.schema))
                )
