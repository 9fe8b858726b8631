"""The benchmark's yardsticks do what the report says they do: the plain CRUD peer
(bench/peer.py) and the bare-ASGI floor (bench/floor.py) check the gateway's bearer
token, lock the dispute's row (`SELECT ... FOR UPDATE`), and update it and insert its
history row in one transaction; refusals write nothing. Run as `make bench` runs them
(uvicorn, 2 worker processes each) on PostgreSQL."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from bench import plain
from bench.stack import JWT_SECRET, SERVICE_TOKEN
from bench.versus import Server, running_yardsticks, summary
from services.gateway.auth import mint_token
from services.gateway.settings import GatewaySettings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def yardsticks(
    pg_conninfo: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, dict[str, Server]]]:
    url = make_conninfo(**pg_conninfo)
    logs = tmp_path_factory.mktemp("yardsticks")
    with running_yardsticks(url, Path(logs), pool_size=2) as (schema, servers):
        yield url, schema, servers


def token(role: str, sub: str) -> str:
    settings = GatewaySettings(  # type: ignore[call-arg]
        _env_file=None, environment="test", jwt_secret=SecretStr(JWT_SECRET),
        service_token=SecretStr(SERVICE_TOKEN),
    )  # fmt: skip
    return mint_token(settings, role=role, sub=sub)


def post(
    server: Server, dispute_id: str, body: object, authorization: str | None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if authorization:
        headers["Authorization"] = authorization
    try:
        conn.request("POST", f"/v1/disputes/{dispute_id}/messages", json.dumps(body), headers)
        answer = conn.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        conn.close()


def connect(url: str, schema: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
    return conn


def stored(url: str, schema: str, dispute_id: str) -> tuple[int, list[tuple[Any, ...]]]:
    """The dispute's version and its history rows (version, kind, role, actor, body, and
    whether the row was written by the transaction that last wrote the dispute)."""
    with connect(url, schema) as conn:
        row = conn.execute(
            "SELECT version, xmin::text FROM disputes WHERE id = %s", (dispute_id,)
        ).fetchone()
        assert row is not None
        history = conn.execute(
            "SELECT version, kind, actor_role, actor_id, body, xmin::text = %s "
            "FROM dispute_history WHERE dispute_id = %s ORDER BY version",
            (row[1], dispute_id),
        ).fetchall()
    return row[0], history


@pytest.mark.parametrize("name", ["peer", "floor"])
def test_a_message_updates_the_row_and_adds_its_history_in_one_transaction(
    yardsticks: tuple[str, str, dict[str, Server]], name: str
) -> None:
    url, schema, servers = yardsticks
    [[dispute_id]] = plain.seed(url, schema, [(f"b-{name}", f"s-{name}")], 1)
    status, answer = post(
        servers[name], dispute_id, {"body": "where is it?"}, f"Bearer {token('buyer', 'b-' + name)}"
    )
    assert status == 200, answer
    assert (answer["id"], answer["version"], answer["state"]) == (dispute_id, 2, "awaiting_seller")
    assert answer["amount"] == {"amount": 5000, "currency": "USD"}
    version, history = stored(url, schema, dispute_id)
    assert version == 2
    # Same xmin: the UPDATE and the INSERT committed in one transaction.
    assert history == [(2, "message_posted", "buyer", f"b-{name}", "where is it?", True)]


@pytest.mark.parametrize("name", ["peer", "floor"])
def test_refusals_write_nothing(yardsticks: tuple[str, str, dict[str, Server]], name: str) -> None:
    url, schema, servers = yardsticks
    [[dispute_id]] = plain.seed(url, schema, [(f"b2-{name}", f"s2-{name}")], 1)
    mine = f"Bearer {token('buyer', 'b2-' + name)}"
    refusals = [
        (None, {"body": "hi"}, 401),
        ("Bearer not.a.token", {"body": "hi"}, 401),
        (f"Bearer {token('buyer', 'someone-else')}", {"body": "hi"}, 404),
        (f"Bearer {token('service', 'orders-svc')}", {"body": "hi"}, 403),
        (mine, {"body": ""}, 422),
        (mine, {"text": "hi"}, 422),
    ]
    for authorization, body, expected in refusals:
        status, answer = post(servers[name], dispute_id, body, authorization)
        assert status == expected, (authorization, body, answer)
    assert post(servers[name], "not-a-uuid", {"body": "hi"}, mine)[0] == 404
    assert stored(url, schema, dispute_id) == (1, [])


@pytest.mark.parametrize("name", ["peer", "floor"])
def test_the_command_waits_for_the_rows_lock(
    yardsticks: tuple[str, str, dict[str, Server]], name: str
) -> None:
    url, schema, servers = yardsticks
    [[dispute_id]] = plain.seed(url, schema, [(f"b3-{name}", f"s3-{name}")], 1)
    answers: list[tuple[int, Any]] = []
    with connect(url, schema) as holder:
        holder.execute("BEGIN")
        holder.execute("SELECT 1 FROM disputes WHERE id = %s FOR UPDATE", (dispute_id,))
        sender = threading.Thread(
            target=lambda: answers.append(
                post(servers[name], dispute_id, {"body": "hi"},
                     f"Bearer {token('buyer', 'b3-' + name)}")
            )
        )  # fmt: skip
        sender.start()
        waiting = None
        with connect(url, schema) as watcher:
            for _ in range(200):  # until its backend waits on our row lock, at most 10 s
                waiting = watcher.execute(
                    "SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%%FROM disputes WHERE id = $1 FOR UPDATE%%'"
                ).fetchone()
                if waiting:
                    break
                time.sleep(0.05)
        assert waiting is not None, "the command did not wait on the row's lock"
        assert waiting[0] == plain.SELECT_FOR_UPDATE.replace("%s", "$1")
        assert answers == []
        holder.execute("COMMIT")
    sender.join(30)
    assert answers and answers[0][0] == 200
    assert stored(url, schema, dispute_id)[0] == 2


def test_each_ratio_to_the_peer_is_taken_within_its_pass() -> None:
    def run(per_s: float, cpu: float) -> dict[str, Any]:
        return {"per_s": per_s, "server_cpu_ms": {"x": cpu}, "server_cpu_ms_total": cpu,
                "cpu_ms_per_command": {"postgres": 0.5}, "p50_ms": 1.0, "p99_ms": 2.0,
                "errors": 0}  # fmt: skip

    # The machine was twice as fast in the second pass: the ratios are 0.5 in both.
    passes = [
        {"8": {"peer": run(100, 2), "floor": run(200, 1), "direct": run(50, 4),
               "gateway": run(25, 8)}},
        {"8": {"peer": run(200, 1), "floor": run(400, 0.5), "direct": run(100, 2),
               "gateway": run(50, 4)}},
    ]  # fmt: skip
    out = summary(passes)["8"]
    assert out["direct"]["ratio_to_peer_each"] == [0.5, 0.5]
    assert out["direct"]["ratio_to_peer"] == 0.5
    assert out["gateway"]["cpu_ratio_to_peer"] == 4.0
    assert out["direct"]["per_s"] == 75.0  # the median of 50 and 100
