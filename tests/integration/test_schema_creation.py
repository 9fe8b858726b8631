"""Processes starting together on an empty PostgreSQL schema (replicas, or the service,
the worker and the projector of one deployment) each create the tables, types, functions
and triggers they need: that DDL must not fail because another process runs it too."""

from __future__ import annotations

import threading
import uuid

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore

from services.dispute.infrastructure.postgres import IdempotentPostgresApplicationRecorder
from tests.conftest import PgConnInfo

STARTERS = 8


@pytest.mark.postgres
def test_recorders_created_at_once_on_an_empty_schema_all_succeed(
    pg_conninfo: PgConnInfo, pg_schema: str
) -> None:
    start = threading.Barrier(STARTERS)
    errors: list[BaseException] = []
    recorders: list[IdempotentPostgresApplicationRecorder] = []
    datastores: list[PostgresDatastore] = []

    def starter() -> None:
        try:
            datastore = PostgresDatastore(
                dbname=pg_conninfo["dbname"], host=pg_conninfo["host"],
                port=pg_conninfo["port"], user=pg_conninfo["user"],
                password=pg_conninfo["password"], schema=pg_schema, pool_size=1,
            )  # fmt: skip
            datastores.append(datastore)
            recorder = IdempotentPostgresApplicationRecorder(datastore)
            start.wait(timeout=30)
            recorder.create_table()
            recorders.append(recorder)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=starter) for _ in range(STARTERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    try:
        assert not errors, errors
        assert len(recorders) == STARTERS
        # and the store they made works
        ids = recorders[0].insert_events([StoredEvent(uuid.uuid4(), 1, "t", b"{}")])
        assert ids and recorders[-1].max_notification_id() == ids[0]
    finally:
        for datastore in datastores:
            datastore.close()
