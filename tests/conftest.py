"""Storage backends for the test suite.

Every storage test takes the ``backend`` fixture and so runs once on SQLite and once on
PostgreSQL, each time against a new, empty store. ``backend`` is a dict of eventsourcing
environment variables: pass it as ``Application(env=backend)``.

PostgreSQL is found through ``DATABASE_URL`` (postgresql://user:pass@host:port/dbname) or
else the libpq variables ``PGHOST``, ``PGPORT``, ``PGUSER``, ``PGPASSWORD``, ``PGDATABASE``.
If it is not configured or not reachable, the PostgreSQL tests are skipped, except under
CI (``CI`` is "true" or "1"), where they must run and the session fails instead.
"""

from __future__ import annotations

import functools
import getpass
import os
import uuid
from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
import pytest
from eventsourcing.postgres import PostgresDatastore
from psycopg import sql
from psycopg.rows import TupleRow

NOT_CONFIGURED = "PostgreSQL not configured: set DATABASE_URL to run storage tests on PostgreSQL"

PgConnInfo = dict[str, str]


def in_ci(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("CI", "").strip().lower() in {"true", "1"}


def postgres_conninfo_from_env(environ: Mapping[str, str] = os.environ) -> PgConnInfo | None:
    """Connection parameters from DATABASE_URL, else from PG* variables, else None."""
    url = environ.get("DATABASE_URL", "").strip()
    if url:
        parts = urlsplit(url)
        if parts.scheme not in {"postgresql", "postgres"}:
            raise ValueError(
                f"DATABASE_URL must be a postgresql:// URL, got scheme {parts.scheme!r}"
            )
        user = unquote(parts.username or "") or getpass.getuser()
        return {
            "host": parts.hostname or "localhost",
            "port": str(parts.port or 5432),
            "user": user,
            "password": unquote(parts.password or ""),
            "dbname": unquote(parts.path.lstrip("/")) or user,
        }
    if environ.get("PGHOST") or environ.get("PGDATABASE"):
        user = environ.get("PGUSER") or getpass.getuser()
        return {
            "host": environ.get("PGHOST") or "localhost",
            "port": environ.get("PGPORT") or "5432",
            "user": user,
            "password": environ.get("PGPASSWORD", ""),
            "dbname": environ.get("PGDATABASE") or user,
        }
    return None


def connect(conninfo: PgConnInfo) -> psycopg.Connection[TupleRow]:
    return psycopg.connect(**conninfo, connect_timeout=3, autocommit=True)


@functools.cache
def postgres_status() -> tuple[PgConnInfo | None, str | None]:
    """(connection parameters, None) if PostgreSQL is usable, else (None, why not).

    Cached, so the reachability check runs once per session.
    """
    try:
        conninfo = postgres_conninfo_from_env()
    except ValueError as exc:
        return None, f"PostgreSQL misconfigured: {exc}"
    if conninfo is None:
        return None, NOT_CONFIGURED
    where = f"{conninfo['user']}@{conninfo['host']}:{conninfo['port']}/{conninfo['dbname']}"
    try:
        with connect(conninfo) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"PostgreSQL unreachable at {where}: {first_line}"
    return conninfo, None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under CI, stop at once if PostgreSQL tests were selected but cannot run."""
    if not in_ci() or session.config.option.collectonly:
        return
    if any(item.get_closest_marker("postgres") for item in session.items):
        _, problem = postgres_status()
        if problem is not None:
            pytest.exit(f"{problem} (CI is set, so PostgreSQL tests must run)", returncode=1)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport() -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Fold every "PostgreSQL unavailable" skip into one summary line, not one per test."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple):
        _, problem = postgres_status()
        reason = report.longrepr[2]
        if problem is not None and reason.endswith(problem):
            report.longrepr = (__file__, None, reason)
    return report


@pytest.fixture(scope="session")
def pg_conninfo() -> PgConnInfo:
    """PostgreSQL connection parameters (host, port, user, password, dbname)."""
    conninfo, problem = postgres_status()
    if problem is not None:
        if in_ci():
            pytest.fail(f"{problem} (CI is set, so PostgreSQL tests must run)", pytrace=False)
        pytest.skip(problem)
    assert conninfo is not None
    return dict(conninfo)


@pytest.fixture
def pg_schema(pg_conninfo: PgConnInfo) -> Iterator[str]:
    """A new, empty schema, dropped with everything in it afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with connect(pg_conninfo) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with connect(pg_conninfo) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def sqlite_env(directory: Path) -> dict[str, str]:
    # A file, not :memory:, so that several connections and threads share one store.
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(directory / "events.db"),
    }


def postgres_datastore(
    conninfo: PgConnInfo, schema: str, pool_size: int = 2, max_overflow: int = 0
) -> PostgresDatastore:
    """An eventsourcing datastore on `schema` (close it when done)."""
    return PostgresDatastore(
        dbname=conninfo["dbname"],
        host=conninfo["host"],
        port=conninfo["port"],
        user=conninfo["user"],
        password=conninfo["password"],
        schema=schema,
        pool_size=pool_size,
        max_overflow=max_overflow,
    )


def postgres_env(conninfo: PgConnInfo, schema: str) -> dict[str, str]:
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": conninfo["dbname"],
        "POSTGRES_HOST": conninfo["host"],
        "POSTGRES_PORT": conninfo["port"],
        "POSTGRES_USER": conninfo["user"],
        # eventsourcing requires the key even when the password is empty (trust auth).
        "POSTGRES_PASSWORD": conninfo["password"],
        # eventsourcing creates its tables and types here but not the schema itself.
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": "4",
        "POSTGRES_MAX_OVERFLOW": "4",
        # Seconds to wait for a pooled connection (default 30, retried 10 times).
        "POSTGRES_CONNECT_TIMEOUT": "5",
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """eventsourcing environment variables for an isolated, empty event store."""
    if request.param == "sqlite":
        return sqlite_env(tmp_path)
    conninfo: PgConnInfo = request.getfixturevalue("pg_conninfo")
    schema: str = request.getfixturevalue("pg_schema")
    return postgres_env(conninfo, schema)


NATS_URL = os.environ.get("NATS_URL", "nats://127.0.0.1:4222")


@functools.cache
def nats_problem() -> str | None:
    """None if a NATS server answers at NATS_URL (default 127.0.0.1:4222), else why not."""
    import socket

    parts = urlsplit(NATS_URL)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), 2):
            return None
    except OSError as exc:
        return f"no NATS server at {NATS_URL}: {exc}"


@pytest.fixture(scope="session")
def nats_url() -> str:
    """A NATS server's URL (with JetStream); skipped if none answers, except under CI."""
    problem = nats_problem()
    if problem is not None:
        if in_ci():
            pytest.fail(f"{problem} (CI is set, so NATS tests must run)", pytrace=False)
        pytest.skip(problem)
    return NATS_URL
