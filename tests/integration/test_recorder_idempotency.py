"""Our recorders: eventsourcing's own recorder test cases, plus the idempotency store."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import ApplicationRecorderTestCase

from services.dispute import audit
from services.dispute.infrastructure.idempotency import (
    Claim,
    Claimed,
    Completion,
    IdempotencyStore,
    InProgress,
    Replay,
    Reused,
    StoredResponse,
    fingerprint,
)
from services.dispute.infrastructure.postgres import IdempotentPostgresApplicationRecorder
from services.dispute.infrastructure.sqlite import IdempotentSQLiteApplicationRecorder
from tests.conftest import PgConnInfo, postgres_datastore

# The library's own test cases -----------------------------------------------------------


class TestSQLiteRecorderPassesLibraryCases(
    ApplicationRecorderTestCase[IdempotentSQLiteApplicationRecorder]
):
    @pytest.fixture(autouse=True)
    def _store_dir(self, tmp_path: Path) -> None:
        self.db_path = tmp_path / "events.db"

    def create_recorder(self) -> IdempotentSQLiteApplicationRecorder:
        recorder = IdempotentSQLiteApplicationRecorder(SQLiteDatastore(str(self.db_path)))
        recorder.create_table()
        return recorder


@pytest.mark.postgres
class TestPostgresRecorderPassesLibraryCases(
    ApplicationRecorderTestCase[IdempotentPostgresApplicationRecorder]
):
    # Failed inserts burn sequence values: order is guaranteed, not contiguity.
    EXPECT_CONTIGUOUS_NOTIFICATION_IDS = False

    @pytest.fixture(autouse=True)
    def _schema(self, pg_conninfo: PgConnInfo, pg_schema: str) -> Any:
        self.datastore = postgres_datastore(pg_conninfo, pg_schema, pool_size=12, max_overflow=4)
        yield
        self.datastore.close()

    def create_recorder(self) -> IdempotentPostgresApplicationRecorder:
        recorder = IdempotentPostgresApplicationRecorder(
            self.datastore, events_table_name="stored_events"
        )
        recorder.create_table()
        return recorder


# The idempotency store, on both backends --------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def recorder(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        rec: Any = IdempotentSQLiteApplicationRecorder(SQLiteDatastore(str(tmp_path / "e.db")))
        rec.create_table()
        yield rec
        rec.datastore.close()
        return
    conninfo: PgConnInfo = request.getfixturevalue("pg_conninfo")
    schema: str = request.getfixturevalue("pg_schema")
    datastore = postgres_datastore(conninfo, schema, pool_size=2)
    rec = IdempotentPostgresApplicationRecorder(datastore)
    rec.create_table()
    yield rec
    datastore.close()


def _event(originator: uuid.UUID, version: int = 1) -> StoredEvent:
    return StoredEvent(originator_id=originator, originator_version=version, topic="t", state=b"s")


def _response(text: str = "ok") -> StoredResponse:
    return StoredResponse(201, {"ETag": '"1"'}, text.encode())


def _claim(key: str = "k1", body: bytes = b'{"a": 1}', principal: str = "buyer:b1") -> Claim:
    return Claim(principal, key, fingerprint("POST", "/v1/disputes", body))


LEASE = 30.0


def test_a_new_key_is_claimed_and_a_second_claim_waits(recorder: IdempotencyStore) -> None:
    now = time.time()
    assert isinstance(recorder.try_claim(_claim(), now, LEASE), Claimed)
    assert isinstance(recorder.try_claim(_claim(), now, LEASE), InProgress)


def test_the_response_commits_with_the_events_and_is_replayed(recorder: Any) -> None:
    claim = _claim()
    assert isinstance(recorder.try_claim(claim, time.time(), LEASE), Claimed)
    originator = uuid.uuid4()

    recorder.insert_events([_event(originator)], idempotency=Completion(claim, _response()))

    assert len(recorder.select_events(originator)) == 1
    result = recorder.try_claim(_claim(), time.time(), LEASE)
    assert result == Replay(_response())


def test_the_same_key_with_another_body_is_reused(recorder: Any) -> None:
    claim = _claim()
    recorder.try_claim(claim, time.time(), LEASE)
    assert isinstance(recorder.try_claim(_claim(body=b'{"a": 2}'), time.time(), LEASE), Reused)
    recorder.insert_events([_event(uuid.uuid4())], idempotency=Completion(claim, _response()))
    assert isinstance(recorder.try_claim(_claim(body=b'{"a": 2}'), time.time(), LEASE), Reused)


def test_key_order_and_spacing_do_not_change_the_fingerprint() -> None:
    assert fingerprint("POST", "/p", b'{"a":1,"b":[1,2]}') == fingerprint(
        "post", "/p", b'{ "b": [1, 2], "a": 1 }'
    )
    assert fingerprint("POST", "/p", b'{"a":1}') != fingerprint("POST", "/q", b'{"a":1}')


def test_keys_are_scoped_to_the_principal(recorder: IdempotencyStore) -> None:
    now = time.time()
    assert isinstance(recorder.try_claim(_claim(principal="buyer:b1"), now, LEASE), Claimed)
    assert isinstance(recorder.try_claim(_claim(principal="buyer:b2"), now, LEASE), Claimed)


def die(recorder: Any, claim: Claim) -> None:
    """What the death of the process holding `claim` leaves behind: on PostgreSQL its
    connection closes (as the kernel closes a killed process's sockets); on SQLite only
    the claim's row, whose token names a process that no longer runs."""
    if isinstance(recorder, IdempotentPostgresApplicationRecorder):
        connection, _ = recorder._held.pop(claim.token)
        connection.close()
        return
    with recorder.datastore.transaction(commit=True) as c:
        c.execute(
            f"UPDATE {recorder.claims_table} SET token = ? WHERE token = ?",
            (f"{dead_pid()}-x", claim.token),
        )


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def claim_soon(recorder: Any, claim: Claim, within_seconds: float = 5.0) -> Any:
    """Claims, trying again for a moment (PostgreSQL ends a closed session's locks
    asynchronously, a few milliseconds after the socket closes)."""
    deadline = time.monotonic() + within_seconds
    while True:
        result = recorder.try_claim(claim, time.time(), LEASE)
        if not isinstance(result, InProgress) or time.monotonic() > deadline:
            return result
        time.sleep(0.02)


def test_the_claim_of_a_process_that_died_is_free_at_once(recorder: Any) -> None:
    crashed = _claim()
    assert isinstance(recorder.try_claim(crashed, time.time(), LEASE), Claimed)
    die(recorder, crashed)

    assert isinstance(claim_soon(recorder, _claim()), Claimed)


def test_a_claim_is_free_once_released(recorder: Any) -> None:
    claim = _claim()
    assert isinstance(recorder.try_claim(claim, time.time(), LEASE), Claimed)
    assert isinstance(recorder.try_claim(_claim(), time.time(), LEASE), InProgress)

    recorder.release(claim)

    assert isinstance(recorder.try_claim(_claim(), time.time(), LEASE), Claimed)


def test_an_sqlite_claim_of_a_live_process_is_taken_over_after_its_lease(tmp_path: Path) -> None:
    recorder = IdempotentSQLiteApplicationRecorder(SQLiteDatastore(str(tmp_path / "e.db")))
    recorder.create_table()
    assert isinstance(recorder.try_claim(_claim(), time.time() - 3600, lease_seconds=5), Claimed)

    assert isinstance(recorder.try_claim(_claim(), time.time(), LEASE), Claimed)


def test_a_second_completion_of_one_key_rolls_its_events_back(recorder: Any) -> None:
    """Even if a slow first claimant finishes after its claim was taken over, the key
    executes once: the response's primary key refuses the second transaction."""
    first, second = _claim(), _claim()
    recorder.try_claim(first, time.time() - 3600, lease_seconds=5)
    recorder.try_claim(second, time.time(), LEASE)
    recorder.insert_events([_event(uuid.uuid4())], idempotency=Completion(second, _response()))

    late = uuid.uuid4()
    with pytest.raises(IntegrityError):
        recorder.insert_events([_event(late)], idempotency=Completion(first, _response("late")))

    assert recorder.select_events(late) == []
    assert recorder.try_claim(_claim(), time.time(), LEASE) == Replay(_response())


def test_a_conflicting_event_rolls_the_response_back(recorder: Any) -> None:
    originator = uuid.uuid4()
    recorder.insert_events([_event(originator)])
    claim = _claim()
    recorder.try_claim(claim, time.time(), LEASE)

    with pytest.raises(IntegrityError):
        recorder.insert_events([_event(originator)], idempotency=Completion(claim, _response()))

    assert isinstance(recorder.try_claim(_claim(), time.time(), LEASE), InProgress)
    recorder.release(claim)
    assert isinstance(recorder.try_claim(_claim(), time.time(), LEASE), Claimed)


def test_a_response_without_events_is_stored(recorder: Any) -> None:
    claim = _claim()
    recorder.try_claim(claim, time.time(), LEASE)
    recorder.store_response(Completion(claim, _response("refused")), time.time())
    assert recorder.try_claim(_claim(), time.time(), LEASE) == Replay(_response("refused"))


def test_purge_forgets_keys_older_than_the_retention(recorder: Any) -> None:
    claim = _claim()
    long_ago = time.time() - 100 * 3600
    recorder.try_claim(claim, long_ago, LEASE)
    recorder.store_response(Completion(claim, _response()), long_ago)
    recorder.release(claim)

    assert recorder.purge(older_than=time.time() - 48 * 3600) == 1

    assert isinstance(recorder.try_claim(_claim(), time.time(), LEASE), Claimed)


# The hash chain when several processes write one aggregate -----------------------------


@pytest.mark.postgres
def test_interleaved_writers_chain_each_event_from_the_one_before_it(
    pg_conninfo: PgConnInfo, pg_schema: str
) -> None:
    """Each PostgreSQL recorder remembers the hashes it wrote; a writer that did not write
    the previous event (another process did) must read it, not chain from an older one."""
    stores = [postgres_datastore(pg_conninfo, pg_schema, pool_size=1) for _ in range(2)]
    first, second = (IdempotentPostgresApplicationRecorder(s) for s in stores)
    first.create_table()
    second.create_table()
    case = uuid.uuid4()
    writers = [first, first, second, first, second, second, first]
    try:
        events = []
        for version, writer in enumerate(writers, start=1):
            event = StoredEvent(case, version, "t", f"state {version}".encode())
            writer.insert_events([event])
            events.append(event)
        recorded = second.select_hashes(case)
        assert recorded == list(enumerate(audit.chain(events), start=1))
    finally:
        for store in stores:
            store.close()
