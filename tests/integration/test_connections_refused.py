"""When PostgreSQL refuses new connections ("too many clients"), a request answers 503
with Retry-After, a problem, never 500; and it is served again once connections are
available (PostgreSQL only).

The refusal is real: the service connects as a role of its own whose CONNECTION LIMIT is
then lowered to what its pool already holds, so PostgreSQL refuses every new connection
with SQLSTATE 53300 (too_many_connections), as a server at max_connections does. The
pool's own connections keep working; what needs a new one fails. The dashboard and the
Merkle log routes create their tables on first use, on a connection of their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from services.dispute.infrastructure.pool import DatabaseUnavailable, ResilientPostgresDatastore
from services.dispute.infrastructure.postgres import serialised_ddl
from services.gateway.app import create_app as create_gateway
from shared.contract import PROBLEM_MEDIA_TYPE
from tests.conftest import PgConnInfo, postgres_env

from .gateway_servers import free_port, serve
from .http_support import TOKEN, headers, uvicorn_server
from .pg_roles import Role, limited_role
from .test_gateway import bearer, settings, token

pytestmark = pytest.mark.postgres

# Routes whose first request creates tables (on a connection outside the pool), and
# their answer once it can (no checkpoint is signed in this test).
FIRST_USE_ROUTES = {"/v1/disputes": 200, "/v1/stats/sellers": 200, "/v1/audit/checkpoint": 404}


@pytest.fixture
def role(pg_conninfo: PgConnInfo) -> Iterator[Role]:
    with limited_role(pg_conninfo) as limited:
        yield limited


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"].endswith("/unavailable")


def test_requests_needing_a_new_connection_answer_503_until_one_is_available(
    role: Role,
) -> None:
    backend = postgres_env(role.conninfo, role.schema)
    with (
        uvicorn_server(backend, threads=1) as service,
        serve(create_gateway(settings(service, service_token=TOKEN))) as gateway,
        httpx.Client(base_url=service, timeout=30) as direct,
        httpx.Client(base_url=gateway, timeout=30) as public,
    ):
        agent = headers("agent", "a1")
        assert direct.get("/v1/state-machine", headers=agent).status_code == 200
        held = role.sessions()
        assert held >= 1  # the service's pool
        role.limit(held)

        for path in FIRST_USE_ROUTES:
            assert_unavailable(direct.get(path, headers=agent))
            assert_unavailable(public.get(path, headers=bearer(token("agent", "a1"))))
        # what the pool's connection serves is served meanwhile
        assert direct.get("/v1/state-machine", headers=agent).status_code == 200

        role.limit(20)
        for path, status in FIRST_USE_ROUTES.items():
            assert direct.get(path, headers=agent).status_code == status
            assert public.get(path, headers=bearer(token("agent", "a1"))).status_code == status


def test_the_ddl_lock_refused_a_connection_raises_database_unavailable(role: Role) -> None:
    datastore = ResilientPostgresDatastore(
        dbname=role.conninfo["dbname"],
        host=role.conninfo["host"],
        port=role.conninfo["port"],
        user=role.conninfo["user"],
        password="",
        schema=role.schema,
        pool_size=1,
        max_overflow=0,
    )
    try:
        role.limit(0)
        with (
            pytest.raises(DatabaseUnavailable, match="too many connections"),
            serialised_ddl(datastore, "anything"),
        ):
            pytest.fail("the block ran without the lock")
        role.limit(20)
        with serialised_ddl(datastore, "anything"):
            pass
    finally:
        datastore.close()


def test_the_ddl_lock_on_an_unreachable_server_raises_database_unavailable(
    pg_conninfo: PgConnInfo,
) -> None:
    datastore = ResilientPostgresDatastore(
        dbname=pg_conninfo["dbname"],
        host="127.0.0.1",
        port=str(free_port()),  # nothing listens there
        user=pg_conninfo["user"],
        password=pg_conninfo["password"],
        schema="unused",
        pool_size=1,
        max_overflow=0,
    )
    try:
        with (
            pytest.raises(DatabaseUnavailable),
            serialised_ddl(datastore, "anything"),
        ):
            pytest.fail("the block ran without the lock")
    finally:
        datastore.close()
