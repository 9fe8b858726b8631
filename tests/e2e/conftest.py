"""One stack of real processes per module, on PostgreSQL in a fresh schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from psycopg import sql

from tests.conftest import PgConnInfo, connect

from .stack import Stack, e2e_stack


@pytest.fixture(scope="module")
def stack(pg_conninfo: PgConnInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    info = pg_conninfo
    auth = quote(info["user"], safe="") + (
        ":" + quote(info["password"], safe="") if info["password"] else ""
    )
    url = f"postgresql://{auth}@{info['host']}:{info['port']}/{info['dbname']}"
    logs: Path = tmp_path_factory.mktemp("e2e-logs")
    running = e2e_stack(url, schema, logs)
    try:
        running.start_all()
        yield running
    finally:
        running.stop_all()
        with connect(pg_conninfo) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
