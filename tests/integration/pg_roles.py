"""A PostgreSQL login role of a test's own, owning a schema, whose CONNECTION LIMIT the
test lowers: PostgreSQL then refuses the role's new connections with SQLSTATE 53300
(too_many_connections), as a server at max_connections does, while the connections it
already has keep working."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from psycopg import sql

from tests.conftest import PgConnInfo, connect


class Role:
    """A login role owning a schema of its own, whose connection limit can be changed."""

    def __init__(self, conninfo: PgConnInfo) -> None:
        self.admin = conninfo
        self.name = f"r_{uuid.uuid4().hex[:10]}"
        self.schema = f"t_{uuid.uuid4().hex[:12]}"
        self.conninfo = {**conninfo, "user": self.name, "password": ""}

    def create(self) -> None:
        role, schema = sql.Identifier(self.name), sql.Identifier(self.schema)
        with connect(self.admin) as admin:
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN CONNECTION LIMIT 20").format(role))
            admin.execute(
                sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                    sql.Identifier(self.admin["dbname"]), role
                )
            )
            admin.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(schema, role))

    def limit(self, connections: int) -> None:
        with connect(self.admin) as admin:
            admin.execute(
                sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
                    sql.Identifier(self.name), sql.Literal(connections)
                )
            )

    def sessions(self) -> int:
        with connect(self.admin) as admin:
            row = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s", (self.name,)
            ).fetchone()
        assert row is not None
        return int(row[0])

    def terminate(self) -> None:
        """Ends every session of the role (as a server restart would)."""
        with connect(self.admin) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (self.name,),
            )

    def drop(self) -> None:
        role = sql.Identifier(self.name)
        self.terminate()
        with connect(self.admin) as admin:
            admin.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                sql.Identifier(self.schema)))  # fmt: skip
            admin.execute(sql.SQL("DROP OWNED BY {}").format(role))
            admin.execute(sql.SQL("DROP ROLE {}").format(role))


@contextmanager
def limited_role(conninfo: PgConnInfo) -> Iterator[Role]:
    """A new role and its schema (skipped if this user may not create roles), dropped
    with its sessions afterwards."""
    role = Role(conninfo)
    try:
        role.create()
    except psycopg.errors.InsufficientPrivilege as error:
        pytest.skip(f"cannot create a role to limit its connections: {error}")
    try:
        yield role
    finally:
        role.drop()
