"""The real worker process: fires what falls due, survives `kill -9`, catches up after a
restart, runs two at once without firing anything twice, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote
from uuid import UUID

import pytest

from services.dispute.application import DisputeApplication
from services.dispute.domain import Dispute
from services.dispute.sandbox_clock import ClockStore, ServiceClock
from services.dispute.scheduler import DeadlineScheduler
from services.dispute.settings import load_settings
from services.dispute.worker import _start_application
from shared.clock import FixedClock
from tests.integration.http_support import settings_for
from tests.integration.test_scheduler import T0, count_events, dispute, open_case

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def worker_env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The environment of the worker processes; also set in this process, so that the
    test's application reads the same store through the same settings."""
    env = {
        "DISPUTES_ENVIRONMENT": "test",
        "DISPUTES_SERVICE_TOKEN": "worker-test-service-token-0123",
        "DISPUTES_SANDBOX": "1",
        "DISPUTES_WORKER_POLL_SECONDS": "0.2",
        "DISPUTES_THREADS": "4",
    }
    if request.param == "sqlite":
        env["DISPUTES_DATA_DIR"] = str(tmp_path / "data")
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.delenv("DISPUTES_DATABASE_URL", raising=False)
    else:
        info = request.getfixturevalue("pg_conninfo")
        schema = request.getfixturevalue("pg_schema")
        auth = quote(info["user"]) + (f":{quote(info['password'])}" if info["password"] else "")
        env["DATABASE_URL"] = f"postgresql://{auth}@{info['host']}:{info['port']}/{info['dbname']}"
        env["DISPUTES_DB_SCHEMA"] = schema
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


class Worker:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        child_env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        child_env.update(env, PYTHONPATH=str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.dispute.worker"],
            cwd=REPO,
            env=child_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        self.proc.kill()  # SIGKILL: no clean-up at all
        self.proc.wait(timeout=10)
        self._log.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.kill()
        self._log.close()

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=20)
        self._log.close()
        return code


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[[dict[str, str]], Worker]]:
    started: list[Worker] = []

    def start(env: dict[str, str]) -> Worker:
        worker = Worker(env, tmp_path / f"worker-{len(started)}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


def wait_for(condition: Callable[[], bool], what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}\n--- worker logs ---\n{logs()}")
        time.sleep(0.05)


def wait_until_started(worker: Worker) -> None:
    wait_for(lambda: "deadline worker started" in worker.log(), "it started", worker.log)


def test_worker_killed_and_restarted_fires_everything_once(
    worker_env: dict[str, str], workers: Callable[[dict[str, str]], Worker]
) -> None:
    settings = load_settings()
    clock = ServiceClock()
    app = DisputeApplication(env=settings.persistence_env(), clock=clock)
    try:
        store = ClockStore(app)
        clock.bind(store)

        def state_of(dispute_id: UUID) -> str:
            return dispute(app, dispute_id).state

        first = workers(worker_env)
        early = open_case(app, "o-w-early")
        clock.move_to(timedelta(days=5, minutes=1))
        wait_for(lambda: state_of(early) == "refund_pending", "the first worker fired", first.log)

        first.kill()
        later = [open_case(app, f"o-w-later-{i}") for i in range(6)]
        clock.move_to(clock.offset + timedelta(days=5, minutes=1))  # due while no worker runs
        assert all(state_of(d) == "awaiting_seller" for d in later)

        # Two workers at once, each catching up from the stored position.
        second, third = workers(worker_env), workers(worker_env)
        logs = lambda: second.log() + third.log()  # noqa: E731
        wait_for(
            lambda: all(state_of(d) == "refund_pending" for d in later),
            "the restarted workers fired",
            logs,
        )
        tracker = DeadlineScheduler(app, clock)
        wait_for(
            lambda: tracker.position() == app.recorder.max_notification_id(),
            "the workers followed the log to its end",
            logs,
        )
        wait_until_started(second)  # SIGTERM is handled once the worker is up
        wait_until_started(third)
        assert second.terminate() == 0
        assert third.terminate() == 0

        for dispute_id in [early, *later]:
            assert count_events(app, dispute_id, Dispute.SellerResponseLapsed) == 1
        fired_lines = [
            line for line in logs().splitlines() if "fired seller_response_timeout" in line
        ]
        assert len(fired_lines) == len(later)
        assert "deadline worker stopped" in logs()
        expected, _ = tracker.computed_from_zero()
        assert tracker.pending() == expected == {}
    finally:
        app.close()


def test_the_worker_snapshots_a_dispute_every_snapshot_interval_events(
    backend: dict[str, str],
) -> None:
    time_now = FixedClock(T0)
    clock = ServiceClock(base=time_now)
    app = _start_application(settings_for(backend, snapshot_interval=2), clock, threading.Event())
    assert app is not None
    try:
        case = open_case(app, "o-w-snap")
        time_now.advance(timedelta(days=5, minutes=1))  # the seller's response window lapses
        assert DeadlineScheduler(app, clock).run_once() == 1
        assert app.snapshots is not None
        assert [s.originator_version for s in app.snapshots.get(case)] == [2]
    finally:
        app.close()
