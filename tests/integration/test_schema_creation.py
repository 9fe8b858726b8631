"""Processes starting together on an empty PostgreSQL schema (replicas, or the service,
the worker and the projector of one deployment) each create the tables, types, functions
and triggers they need: that DDL must not fail because another process runs it too."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore

from services.dispute.infrastructure.postgres import IdempotentPostgresApplicationRecorder
from services.dispute.projections.read_models import construct_views
from tests.conftest import PgConnInfo, postgres_datastore

STARTERS = 8

pytestmark = pytest.mark.postgres


def datastores(info: PgConnInfo, schema: str) -> list[PostgresDatastore]:
    return [postgres_datastore(info, schema, pool_size=1) for _ in range(STARTERS)]


def all_at_once(
    stores: list[PostgresDatastore], start: Callable[[PostgresDatastore], object]
) -> None:
    """Runs `start` on each datastore in its own thread, all released together; none fails."""
    barrier = threading.Barrier(len(stores))
    errors: list[BaseException] = []

    def run(store: PostgresDatastore) -> None:
        try:
            barrier.wait(timeout=30)
            start(store)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


def test_recorders_created_at_once_on_an_empty_schema_all_succeed(
    pg_conninfo: PgConnInfo, pg_schema: str
) -> None:
    stores = datastores(pg_conninfo, pg_schema)
    recorders = [IdempotentPostgresApplicationRecorder(s) for s in stores]
    by_store = dict(zip(map(id, stores), recorders, strict=True))
    try:
        all_at_once(stores, lambda store: by_store[id(store)].create_table())
        # and the store they made works
        ids = recorders[0].insert_events([StoredEvent(uuid.uuid4(), 1, "t", b"{}")])
        assert ids and recorders[-1].max_notification_id() == ids[0]
    finally:
        for store in stores:
            store.close()


def test_dashboard_views_created_at_once_on_an_empty_schema_all_succeed(
    pg_conninfo: PgConnInfo, pg_schema: str
) -> None:
    # The projector and every service process create the views they read.
    stores = datastores(pg_conninfo, pg_schema)
    try:
        all_at_once(stores, lambda store: construct_views(store, create=True))
    finally:
        for store in stores:
            store.close()
