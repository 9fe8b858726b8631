"""What a broken connection means for a write, a claim and the pool (PostgreSQL).

The whole stack under real faults is tried in tests/faults; these pin the pieces down
one at a time on this machine's PostgreSQL, breaking a connection on purpose with
`pg_terminate_backend` from another session.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from eventsourcing.persistence import OperationalError, StoredEvent
from psycopg import sql

from services.dispute.infrastructure.idempotency import (
    Claim,
    Claimed,
    Completion,
    StoredResponse,
    fingerprint,
)
from services.dispute.infrastructure.pool import (
    DatabaseUnavailable,
    OutcomeUnknown,
    ResilientPostgresDatastore,
)
from services.dispute.infrastructure.postgres import IdempotentPostgresApplicationRecorder
from tests.conftest import PgConnInfo, connect

pytestmark = pytest.mark.postgres


@pytest.fixture
def datastore(pg_conninfo: PgConnInfo, pg_schema: str) -> Iterator[ResilientPostgresDatastore]:
    store = ResilientPostgresDatastore(
        dbname=pg_conninfo["dbname"],
        host=pg_conninfo["host"],
        port=pg_conninfo["port"],
        user=pg_conninfo["user"],
        password=pg_conninfo["password"],
        pool_size=2,
        max_overflow=1,
        connect_timeout=2,
        lock_timeout=0,
        schema=pg_schema,
    )
    yield store
    store.close()


@pytest.fixture
def recorder(datastore: ResilientPostgresDatastore) -> IdempotentPostgresApplicationRecorder:
    rec = IdempotentPostgresApplicationRecorder(datastore, events_table_name="stored_events")
    rec.create_table()
    return rec


def _event() -> StoredEvent:
    return StoredEvent(originator_id=uuid.uuid4(), originator_version=1, topic="t", state=b"s")


def _terminate_when_waiting(conninfo: PgConnInfo, marker: str) -> None:
    """Terminates the session whose statement (containing `marker`) waits for a lock."""
    with connect(conninfo) as admin:
        for _ in range(500):
            row = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE %s AND pid <> pg_backend_pid()",
                (f"%{marker}%",),
            ).fetchone()
            if row is not None:
                admin.execute("SELECT pg_terminate_backend(%s)", (row[0],))
                return
            time.sleep(0.01)
    raise AssertionError("the write never waited for the lock")


def test_a_write_whose_connection_breaks_after_it_was_sent_is_an_unknown_outcome(
    recorder: IdempotentPostgresApplicationRecorder, pg_conninfo: PgConnInfo, pg_schema: str
) -> None:
    """Not retried (it might meet its own committed write and be refused), not a plain
    storage error: OutcomeUnknown, which the API answers 503 (retry with the same key)."""
    table = sql.Identifier(pg_schema, "stored_events")
    with connect(pg_conninfo) as holder:
        holder.autocommit = False
        holder.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table))
        killer = threading.Thread(
            target=_terminate_when_waiting, args=(pg_conninfo, "stored_events_append")
        )
        killer.start()
        with pytest.raises(OutcomeUnknown):
            recorder.insert_events([_event()])
        killer.join()
        holder.rollback()


def test_a_write_the_server_refused_is_not_an_unknown_outcome(
    pg_conninfo: PgConnInfo, pg_schema: str, datastore: ResilientPostgresDatastore
) -> None:
    datastore.lock_timeout = 1
    recorder = IdempotentPostgresApplicationRecorder(datastore, events_table_name="stored_events")
    recorder.create_table()
    table = sql.Identifier(pg_schema, "stored_events")
    with connect(pg_conninfo) as holder:
        holder.autocommit = False
        holder.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(table))
        with pytest.raises(OperationalError) as refused:
            recorder.insert_events([_event()])
        holder.rollback()
    assert not isinstance(refused.value, OutcomeUnknown)
    assert recorder.select_notifications(1, 10) == []


def test_a_claim_ends_with_its_session(
    recorder: IdempotentPostgresApplicationRecorder, pg_conninfo: PgConnInfo
) -> None:
    claim = Claim("buyer:b1", "k", fingerprint("POST", "/v1/disputes", b"{}"))
    assert isinstance(recorder.try_claim(claim, time.time(), 30), Claimed)
    connection, _ = recorder._held[claim.token]
    with connect(pg_conninfo) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (connection.info.backend_pid,))

    retry = Claim("buyer:b1", "k", claim.fingerprint)
    deadline = time.monotonic() + 5
    result: Any = None
    while time.monotonic() < deadline:
        result = recorder.try_claim(retry, time.time(), 30)
        if isinstance(result, Claimed):
            break
        time.sleep(0.02)
    assert isinstance(result, Claimed)
    recorder.release(claim)  # the dead session's claim: nothing to do, nothing raised
    recorder.release(retry)


def test_a_stored_response_is_the_answer_to_its_key(
    recorder: IdempotentPostgresApplicationRecorder,
) -> None:
    """A refusal met after the key's own write committed answers that write's response."""
    claim = Claim("buyer:b1", "k2", fingerprint("POST", "/v1/disputes", b"{}"))
    recorder.try_claim(claim, time.time(), 30)
    applied = StoredResponse(200, {"ETag": '"2"'}, b"applied")
    recorder.insert_events([_event()], idempotency=Completion(claim, applied))

    refusal = StoredResponse(412, {}, b"refused")
    assert recorder.store_response(Completion(claim, refusal), time.time()) == applied
    recorder.release(claim)


def test_idle_connections_broken_together_are_replaced_before_use(
    recorder: IdempotentPostgresApplicationRecorder,
    datastore: ResilientPostgresDatastore,
    pg_conninfo: PgConnInfo,
) -> None:
    """As after a PostgreSQL restart: every pooled session ends while the pool is idle;
    the next call still succeeds (checked, dropped together, reopened)."""
    recorder.max_notification_id()
    with datastore.get_connection() as one, datastore.get_connection() as two:
        pids = [one.info.backend_pid, two.info.backend_pid]
    time.sleep(1.2)  # idle for longer than the check's threshold
    with connect(pg_conninfo) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

    assert recorder.max_notification_id() in (None, 0)
    with datastore.get_connection() as conn:
        assert conn.info.backend_pid not in pids


def test_while_the_database_is_unreachable_callers_fail_with_unavailable(
    pg_conninfo: PgConnInfo, pg_schema: str
) -> None:
    """Nothing listens on the port: the caller gets DatabaseUnavailable (which the
    library does not retry, so a request fails fast) and the pool says why."""
    store = ResilientPostgresDatastore(
        dbname="x",
        host="127.0.0.1",
        port=_closed_port(),
        user="postgres",
        password="",
        pool_size=1,
        connect_timeout=2,
        schema=pg_schema,
    )
    try:
        with pytest.raises(DatabaseUnavailable), store.get_connection():
            pass
        reason = store.down_reason()
        assert reason is not None and "database unreachable" in reason
    finally:
        store.close()


def _closed_port() -> int:
    from services.stack import free_port

    return free_port()


def test_a_psycopg_error_in_use_is_translated(datastore: ResilientPostgresDatastore) -> None:
    with pytest.raises(Exception) as raised, datastore.get_connection() as conn:
        conn.execute("SELECT * FROM no_such_table")
    assert not isinstance(raised.value, psycopg.Error)
