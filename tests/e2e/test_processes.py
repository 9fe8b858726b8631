"""`DISPUTES_PROCESSES=2`: the dispute service as two server processes on one port, on an
empty database. The parent creates the tables once; both workers serve, and commands that
race across them still never both win."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from psycopg import sql

from tests.conftest import PgConnInfo, connect

from .stack import SERVICE_TOKEN, Stack, e2e_stack

pytestmark = pytest.mark.e2e


def server_processes(pid: int) -> list[int]:
    """uvicorn's worker processes under `pid` (not multiprocessing's resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
            if b"resource_tracker" not in cmdline:
                found.append(int(child))
    return found


def headers(role: str, who: str) -> dict[str, str]:
    return {"X-Internal-Token": SERVICE_TOKEN, "X-Principal-Role": role, "X-Principal-Id": who}


@pytest.fixture
def two_process_service(pg_conninfo: PgConnInfo, tmp_path: Path) -> Iterator[Stack]:
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    info = pg_conninfo
    auth = quote(info["user"], safe="") + (
        ":" + quote(info["password"], safe="") if info["password"] else ""
    )
    url = f"postgresql://{auth}@{info['host']}:{info['port']}/{info['dbname']}"
    stack = e2e_stack(
        url,
        schema,
        tmp_path,
        DISPUTES_PROCESSES="2",
        DISPUTES_SANDBOX="0",
        DISPUTES_LOG_FORMAT="json",
    )
    try:
        stack.start("service")
        stack.wait_ready(stack.service_url)
        yield stack
    finally:
        stack.stop_all()
        with connect(pg_conninfo) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_two_processes_serve_one_port_and_racing_commands_never_both_win(
    two_process_service: Stack,
) -> None:
    stack = two_process_service
    assert len(server_processes(stack.processes["service"].pid)) == 2, stack.tail()
    placed = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    with httpx.Client(base_url=stack.service_url, timeout=30) as client:
        order = client.put("/v1/orders/o-procs", headers=headers("service", "orders"), json={
            "buyer_id": "b1", "seller_id": "s1", "amount": {"amount": 5000, "currency": "USD"},
            "payment_method": "card", "placed_at": placed})  # fmt: skip
        assert order.status_code == 201, order.text
        opened = client.post("/v1/disputes", headers=headers("buyer", "b1"), json={
            "order_id": "o-procs", "reason": "not_received", "description": "never came",
            "requested_resolution": "refund_only", "amount": {"amount": 5000, "currency": "USD"},
        })  # fmt: skip
        assert opened.status_code == 201, opened.text
        path = f"/v1/disputes/{opened.json()['id']}"

    # Many connections, so both workers take some: the seller accepts and offers at once,
    # on the same version. Exactly one wins; the others are told why.
    answers: list[int] = []
    start = threading.Barrier(8)

    def race(n: int) -> None:
        with httpx.Client(base_url=stack.service_url, timeout=30) as own:
            start.wait(timeout=10)
            action, body = ("accept", {}) if n % 2 else ("offer", {"type": "full_refund"})
            response = own.post(f"{path}/{action}", json=body,
                                headers={**headers("seller", "s1"), "If-Match": '"1"'})  # fmt: skip
            answers.append(response.status_code)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(answers).count(200) == 1, answers
    assert all(code in (200, 409, 412) for code in answers), answers
    with httpx.Client(base_url=stack.service_url, timeout=30) as client:
        history = client.get(f"{path}/events", headers=headers("buyer", "b1")).json()
    assert len(history["events"]) == 2, history  # opened, and the one winner

    # Both processes' metrics at one /metrics (prometheus_client's multiprocess mode):
    # every command of the test counted once, whichever process ran it.
    with httpx.Client(base_url=stack.service_url, timeout=30) as client:
        scraped = client.get("/metrics").text
    commands = {
        tuple(re.findall(r'(?:action|outcome)="([^"]*)"', line)): float(line.rsplit(" ", 1)[1])
        for line in scraped.splitlines()
        if line.startswith("disputes_commands_total{")
    }
    assert sum(commands.values()) == 10, scraped  # order, dispute, 8 racers
    assert commands[("put_order", "applied")] == 1
    assert sum(n for (action, _), n in commands.items() if action.startswith("action_")) == 8
    assert sum(n for (_, outcome), n in commands.items() if outcome == "applied") == 3

    # One JSON access line per request, from either process, each with its request id.
    log_lines = (stack.logs / "service.log").read_text().splitlines()
    access = [json.loads(x) for x in log_lines if x.startswith("{") and '"access"' in x]
    assert not [x for x in log_lines if "uvicorn.access" in x]  # not a second line each
    assert len(access) == 11, access  # order, dispute, 8 racers, history (scrapes: DEBUG)
    assert all(a["process"] == "dispute" and a["request_id"] for a in access)
    servers = set(server_processes(stack.processes["service"].pid))
    assert {a["pid"] for a in access} <= servers

    # Both processes serve the one port. Which accepts a new connection is the kernel's
    # choice (one fast worker may take all of a short burst), so more connections are
    # opened, eight at a time, until both have answered.
    def answered_by() -> set[int]:
        lines = (stack.logs / "service.log").read_text().splitlines()
        return {json.loads(x)["pid"] for x in lines if x.startswith("{") and '"access"' in x}

    def read(_: int) -> None:
        with httpx.Client(base_url=stack.service_url, timeout=30) as own:
            assert own.get(path, headers=headers("buyer", "b1")).status_code == 200

    for _ in range(25):
        if answered_by() == servers:
            break
        readers = [threading.Thread(target=read, args=(n,)) for n in range(8)]
        for t in readers:
            t.start()
        for t in readers:
            t.join(timeout=30)
    assert answered_by() == servers
