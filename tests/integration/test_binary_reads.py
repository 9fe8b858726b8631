"""Reads of events, snapshots and notifications on PostgreSQL ask for binary results
(services.dispute.infrastructure.pool.binary_results): every byte of a stored state comes
back as it was written, and the connection goes back to the pool asking for text again,
so statements with types that have no binary loader are unaffected."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
from eventsourcing.persistence import StoredEvent

from services.dispute.application import DisputeApplication
from services.dispute.infrastructure.pool import ResilientPostgresDatastore
from tests.conftest import PgConnInfo, postgres_env

pytestmark = pytest.mark.postgres

# Every byte value, and the bytes of a bytea's text form ("\\x..."), where a mix-up of
# formats would show.
STATES = [bytes(range(256)), b"\\x414243", b"", b"\x00" * 3 + b"{}" * 5000]


@pytest.fixture
def app(pg_conninfo: PgConnInfo, pg_schema: str) -> Iterator[DisputeApplication]:
    env = postgres_env(pg_conninfo, pg_schema)
    app = DisputeApplication(
        env={**env, "PERSISTENCE_MODULE": "services.dispute.infrastructure.postgres"}
    )
    try:
        yield app
    finally:
        app.close()


def stored(originator_id: object, version: int, state: bytes) -> StoredEvent:
    return StoredEvent(originator_id, version, "tests:Raw", state)  # type: ignore[arg-type]


def test_states_come_back_byte_for_byte(app: DisputeApplication) -> None:
    originator = uuid4()
    events = [stored(originator, v, s) for v, s in enumerate(STATES, start=1)]
    app.recorder.insert_events(events)
    assert app.snapshots is not None
    app.snapshots.recorder.insert_events(events)

    read = app.recorder.select_events(originator)
    assert [(e.originator_id, e.originator_version, e.state) for e in read] == [
        (originator, v, s) for v, s in enumerate(STATES, start=1)
    ]
    newest = app.snapshots.recorder.select_events(originator, desc=True, limit=1)
    assert newest[0].state == STATES[-1] and newest[0].originator_version == len(STATES)
    notes = app.recorder.select_notifications(start=None, limit=10)
    assert [n.state for n in notes if n.originator_id == originator] == STATES
    assert all(isinstance(n.id, int) and isinstance(n.topic, str) for n in notes)


def test_connections_go_back_to_text_results(app: DisputeApplication) -> None:
    datastore = app.recorder.datastore
    assert isinstance(datastore, ResilientPostgresDatastore)
    app.recorder.insert_events([stored(uuid4(), 1, b"x")])

    def point() -> object:
        # No binary loader for `point`: in binary it would arrive as bytes.
        with datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute("SELECT '(1,2)'::point AS p")
            row = curs.fetchone()
            assert row is not None
            return row["p"]

    with datastore.binary_results():
        assert isinstance(point(), bytes)  # the block asks for binary ...
    assert app.recorder.select_notifications(start=None, limit=5)
    assert app.recorder.select_events(uuid4()) == []
    # ... and every pooled connection answers in text again after it.
    for _ in range(3):
        assert point() == "(1,2)"
