"""`make run` (`python -m services.run`) as a user starts it, on PostgreSQL: a child
killed from outside comes back while the rest keep serving, and the service's internal
port does not accept the published development token, since the launcher gives its
children a random one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from psycopg import sql

from services.stack import free_port
from shared.internal import DEV_SERVICE_TOKEN
from tests.conftest import PgConnInfo, connect

pytestmark = pytest.mark.e2e


def child_pids(pid: int) -> dict[str, int]:
    """The launcher's children, by the module each runs."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue
            if b"-m" in argv:
                found[argv[argv.index(b"-m") + 1].decode()] = int(child)
    return found


@pytest.fixture
def launcher(
    pg_conninfo: PgConnInfo, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, str]]:
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    info = pg_conninfo
    auth = quote(info["user"], safe="") + (
        ":" + quote(info["password"], safe="") if info["password"] else ""
    )
    url = f"postgresql://{auth}@{info['host']}:{info['port']}/{info['dbname']}"
    service, gateway = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTES_")}
    env.update(
        DATABASE_URL=url,
        DISPUTES_DB_SCHEMA=schema,
        DISPUTES_PORT=str(service),
        DISPUTES_GATEWAY_PORT=str(gateway),
        DISPUTES_THREADS="2",
        DISPUTES_WORKER_POLL_SECONDS="0.2",
        # Free ports, not make run's 9102-9105: another stack on this machine may hold those.
        DISPUTES_WORKER_METRICS_PORT=str(free_port()),
        DISPUTES_PROJECTOR_METRICS_PORT=str(free_port()),
        DISPUTES_DELIVERY_METRICS_PORT=str(free_port()),
        DISPUTES_NOTARY_METRICS_PORT=str(free_port()),
    )
    log = (tmp_path / "run.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.run"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        yield process, f"http://127.0.0.1:{gateway}", f"http://127.0.0.1:{service}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        print((tmp_path / "run.log").read_text(errors="replace")[-4000:])
        with connect(pg_conninfo) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def wait_for(predicate: object, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("not in time")


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def test_a_killed_child_is_restarted_and_the_rest_keep_serving(
    launcher: tuple[subprocess.Popen[bytes], str, str],
) -> None:
    process, gateway, service = launcher
    wait_for(lambda: ready(gateway))
    before = child_pids(process.pid)
    assert set(before) >= {
        "services.dispute",
        "services.dispute.worker",
        "services.dispute.projections",
        "services.gateway",
    }, before

    os.kill(before["services.dispute.projections"], signal.SIGKILL)
    os.kill(before["services.dispute.worker"], signal.SIGKILL)
    assert ready(gateway)  # the gateway and the service did not go down with them

    def restarted() -> bool:
        now = child_pids(process.pid)
        return all(
            now.get(m) not in (None, before[m])
            for m in ("services.dispute.projections", "services.dispute.worker")
        )

    wait_for(restarted)
    after = child_pids(process.pid)
    assert after["services.dispute"] == before["services.dispute"]
    assert after["services.gateway"] == before["services.gateway"]
    assert process.poll() is None

    # The internal port: the published development token is refused.
    answer = httpx.get(
        service + "/v1/state-machine",
        headers={
            "X-Internal-Token": DEV_SERVICE_TOKEN,
            "X-Principal-Role": "agent",
            "X-Principal-Id": "a1",
        },
    )
    assert answer.status_code == 401, answer.text
