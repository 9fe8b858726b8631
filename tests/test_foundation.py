"""The storage fixtures give each test a working, empty store of its own."""

from __future__ import annotations

import uuid

import pytest
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate, event
from psycopg import sql

from tests.conftest import PgConnInfo, connect, postgres_conninfo_from_env, postgres_env


class Note(Aggregate):
    @event("Written")
    def __init__(self, text: str) -> None:
        self.text = text

    @staticmethod
    def create_id(text: str) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"note:{text}")


def test_backend_saves_and_reads_back_an_aggregate(backend: dict[str, str]) -> None:
    with Application[uuid.UUID](env=backend) as app:
        note = Note("hello")
        app.save(note)

        assert app.repository.get(note.id).text == "hello"
        assert app.recorder.max_notification_id() is not None


@pytest.mark.parametrize("run", ["first", "second"])
def test_each_backend_instance_starts_empty_and_sees_no_other_store(
    backend: dict[str, str], run: str
) -> None:
    # Both runs write the same id; sharing a store would surface the other run's note.
    with Application[uuid.UUID](env=backend) as app:
        assert app.recorder.max_notification_id() is None
        with pytest.raises(AggregateNotFoundError):
            app.repository.get(Note.create_id("shared"))

        app.save(Note("shared"))


@pytest.mark.postgres
def test_postgres_tables_are_created_in_the_test_schema(
    pg_conninfo: PgConnInfo, pg_schema: str
) -> None:
    with Application[uuid.UUID](env=postgres_env(pg_conninfo, pg_schema)) as app:
        app.save(Note("placed"))

    table = sql.Identifier(pg_schema, "application_events")
    with connect(pg_conninfo) as conn:
        count = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    assert count == (1,)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"DATABASE_URL": "postgresql://app:p%40ss@db.example:6543/disputes"},
            {
                "host": "db.example",
                "port": "6543",
                "user": "app",
                "password": "p@ss",
                "dbname": "disputes",
            },
        ),
        (
            {"PGHOST": "127.0.0.1", "PGUSER": "postgres", "PGDATABASE": "test"},
            {
                "host": "127.0.0.1",
                "port": "5432",
                "user": "postgres",
                "password": "",
                "dbname": "test",
            },
        ),
    ],
    ids=["database_url", "libpq_variables"],
)
def test_postgres_settings_come_from_database_url_or_libpq_variables(
    environ: dict[str, str], expected: dict[str, str]
) -> None:
    assert postgres_conninfo_from_env(environ) == expected


def test_postgres_is_unconfigured_without_database_url_or_pghost_or_pgdatabase() -> None:
    assert postgres_conninfo_from_env({"PGUSER": "postgres", "PGPASSWORD": "x"}) is None
