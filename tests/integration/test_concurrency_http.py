"""Racing commands on one dispute through a real uvicorn server on PostgreSQL: every
version is used once, every loser is told (409, or 412 with If-Match), no
acknowledged command is lost."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.conftest import PgConnInfo, postgres_env

from .http_support import dispute_body, headers, order_body, uvicorn_server

CLIENTS = 20


@pytest.fixture
def postgres_backend(pg_conninfo: PgConnInfo, pg_schema: str) -> dict[str, str]:
    return postgres_env(pg_conninfo, pg_schema)


@pytest.mark.postgres
def test_twenty_racing_commands_never_lose_an_update(postgres_backend: dict[str, str]) -> None:
    with (
        uvicorn_server(postgres_backend, threads=24) as base,
        httpx.Client(base_url=base, timeout=30) as client,
    ):
        assert client.put("/v1/orders/o-race", json=order_body(),
                          headers=headers("service", "orders")).status_code == 201  # fmt: skip
        opened = client.post("/v1/disputes", json=dispute_body("o-race"),
                             headers=headers("buyer", "b1"))  # fmt: skip
        dispute_id = opened.json()["id"]
        barrier = threading.Barrier(CLIENTS)
        results: dict[str, httpx.Response] = {}
        lock = threading.Lock()

        def send(n: int) -> None:
            role, who = ("buyer", "b1") if n % 2 else ("seller", "s1")
            extra = {"X-Request-ID": f"race-{n}"}
            if n % 4 == 0:
                extra["If-Match"] = '"1"'
            with httpx.Client(base_url=base, timeout=30) as own:
                barrier.wait()
                response = own.post(f"/v1/disputes/{dispute_id}/messages",
                                    json={"body": f"message {n}"},
                                    headers=headers(role, who, **extra))  # fmt: skip
            with lock:
                results[f"race-{n}"] = response

        threads = [threading.Thread(target=send, args=(n,)) for n in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        statuses = {request_id: r.status_code for request_id, r in results.items()}
        assert set(statuses.values()) <= {200, 409, 412}, statuses
        for n in range(0, CLIENTS, 4):
            assert statuses[f"race-{n}"] in (200, 412)
        history = client.get(f"/v1/disputes/{dispute_id}/events",
                             headers=headers("auditor", "au")).json()["events"]  # fmt: skip
        versions = [e["version"] for e in history]
        assert versions == list(range(1, len(history) + 1))
        recorded = {e["request_id"]: e["version"] for e in history[1:]}
        won = {rid: r for rid, r in results.items() if r.status_code == 200}
        assert set(recorded) == set(won)  # every acknowledged command is there, only those
        for rid, response in won.items():
            assert response.headers["ETag"] == f'"{recorded[rid]}"'
        assert len({r.headers["ETag"] for r in won.values()}) == len(won)
        print("statuses:", sorted(statuses.values()))
