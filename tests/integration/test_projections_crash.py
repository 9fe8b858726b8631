"""The projector killed with SIGKILL at random points while commands stream in.

The projector runs as a real process (`python -m services.dispute.projections`); a
writer thread in this process keeps driving disputes through DisputeApplication. After
every kill the projector is restarted. At the end, once it has caught up, every view
must equal a rebuild from zero: no event lost, none counted twice.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from services.dispute.application import DisputeApplication
from services.dispute.domain import ActionNotAllowed, OrderFacts
from services.dispute.domain.values import Actor, Role
from services.dispute.projections import DashboardQueries, Projector
from shared.clock import FixedClock
from shared.money import Money
from tests.conftest import PgConnInfo, postgres_env
from tests.integration.app_commands import act

ROOT = Path(__file__).resolve().parents[2]
KILLS = 22
SERVICE = Actor(Role.SERVICE, "orders")
AGENT = Actor(Role.AGENT, "agent-1")
PHOTO = [{"kind": "photo", "uri": "https://files.example/p.jpg", "sha256": "b" * 64}]

# Each dispute follows one of these scripts, a step per turn: (role, action, args).
SCRIPTS: list[list[tuple[str, str, dict[str, Any]]]] = [
    [
        ("seller", "offer", {"type": "partial_refund", "amount": 500, "message": "half"}),
        ("buyer", "accept-offer", {}),
        ("service", "refund-paid", {"reference": "r"}),
    ],
    [("seller", "reject", {"reason": "no"}), ("buyer", "escalate", {"reason": "unfair"})],
    [("buyer", "withdraw", {"reason": "found it"})],
    [
        ("seller", "accept", {}),
        ("service", "refund-failed", {"reason": "bank said no"}),
        ("service", "refund-paid", {"reference": "r"}),
    ],
    [],  # left to the seller's time-out
]


class Writer(threading.Thread):
    """Opens disputes and moves them along their scripts until told to stop."""

    def __init__(self, app: DisputeApplication, clock: FixedClock) -> None:
        super().__init__(daemon=True)
        self.app, self.clock = app, clock
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.commands = 0
        self._ids = itertools.count()
        self._open: list[tuple[str, str, str, list[tuple[str, str, dict[str, Any]]]]] = []

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.step()
                self.stop.wait(0.005)
        except BaseException as error:  # surfaced by the test
            self.error = error

    def step(self) -> None:
        n = next(self._ids)
        self.clock.advance(timedelta(minutes=7))
        if n % 3 == 0:
            self.open(n)
        elif self._open:
            dispute_id, buyer, seller, script = self._open[n % len(self._open)]
            if script:
                role, action, args = script.pop(0)
                actor = {"buyer": Actor(Role.BUYER, buyer), "seller": Actor(Role.SELLER, seller)}
                if action == "refund-paid":
                    args = {**args, "paid_at": self.clock.now()}
                try:
                    act(self.app, actor.get(role, SERVICE), f"w{n}", dispute_id, action, args)
                except ActionNotAllowed:  # a time-out overtook the script
                    script.clear()
                else:
                    self.commands += 1
            else:
                self._open.remove((dispute_id, buyer, seller, script))
        if n % 50 == 49:  # a day passes: the deadline worker fires what is due
            self.clock.advance(timedelta(days=2))
            for dispute_id, *_ in list(self._open):
                self.app.fire_due_timeouts(dispute_id, f"t{n}")

    def open(self, n: int) -> None:
        buyer, seller = f"b{n % 5}", f"s{n % 4}"
        facts = OrderFacts.parse(
            buyer_id=buyer,
            seller_id=seller,
            amount=Money(1000 + n, "EUR"),
            payment_method="wallet" if n % 2 else "card",
            placed_at=self.clock.now() - timedelta(days=1),
        )
        self.app.put_order(SERVICE, f"o{n}", f"order-{n}", facts)
        dispute = self.app.open_dispute(
            Actor(Role.BUYER, buyer),
            f"d{n}",
            order_ref=f"order-{n}",
            reason=["not_received", "damaged", "late_delivery"][n % 3],
            requested_resolution="refund_only",
            amount=Money(1000 + n, "EUR"),
            description="crash test",
            evidence=PHOTO,
        )
        script = [tuple(s) for s in SCRIPTS[(n // 3) % len(SCRIPTS)]]
        self._open.append((str(dispute.id), buyer, seller, script))  # type: ignore[arg-type]
        self.commands += 2


def _database_url(conninfo: PgConnInfo) -> str:
    password = f":{quote(conninfo['password'])}" if conninfo["password"] else ""
    return (
        f"postgresql://{quote(conninfo['user'])}{password}@{conninfo['host']}:"
        f"{conninfo['port']}/{quote(conninfo['dbname'])}"
    )


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout:.0f} s")
        time.sleep(0.05)


@pytest.fixture
def store(
    pg_conninfo: PgConnInfo, pg_schema: str
) -> Iterator[tuple[DisputeApplication, dict[str, str]]]:
    clock = FixedClock(datetime(2026, 5, 4, 8, 0, tzinfo=UTC))
    app = DisputeApplication(env=postgres_env(pg_conninfo, pg_schema), clock=clock)
    child_env = {
        **os.environ,
        "DATABASE_URL": _database_url(pg_conninfo),
        "DISPUTES_DB_SCHEMA": pg_schema,
        "DISPUTES_THREADS": "2",
        "PYTHONPATH": str(ROOT),
    }
    try:
        yield app, child_env
    finally:
        app.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_views_equal_a_rebuild_after_random_kills(
    store: tuple[DisputeApplication, dict[str, str]], tmp_path: Path
) -> None:
    app, child_env = store
    projector = Projector(app)  # creates the views, and rebuilds them at the end
    summary = projector.views["summary"]
    log = (tmp_path / "projector.log").open("w")

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "services.dispute.projections", "--batch-size", "4",
             "--poll-seconds", "0.05"],
            cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    writer = Writer(app, app.clock)  # type: ignore[arg-type]
    writer.start()
    rng = random.Random(20260504)
    kills_while_working = 0
    child: subprocess.Popen[bytes] | None = None
    try:
        for _ in range(KILLS):
            before = summary.max_tracking_id(app.name) or 0
            child = start()
            # Let it get going on the stream, then kill it at a random moment.
            _wait_for(
                lambda b=before: (summary.max_tracking_id(app.name) or 0) > b,  # type: ignore[misc]
                "the projector to make progress",
            )
            time.sleep(rng.uniform(0.0, 0.4))
            behind = app.recorder.max_notification_id() or 0
            child.send_signal(signal.SIGKILL)
            assert child.wait(timeout=30) == -signal.SIGKILL
            kills_while_working += behind > (summary.max_tracking_id(app.name) or 0)
            assert writer.error is None, writer.error
    finally:
        writer.stop.set()
        writer.join(timeout=30)
        if child is not None and child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    assert writer.error is None, writer.error
    assert kills_while_working >= 1  # some kills landed with work still to do

    # Restart once more, let it catch up, and stop it cleanly.
    last = start()
    try:
        queries = DashboardQueries(app, projector.views)
        _wait_for(lambda: queries.lag()["events_behind"] == 0, "the projector to catch up")
        last.send_signal(signal.SIGTERM)
        assert last.wait(timeout=30) == 0  # a clean stop
    finally:
        if last.poll() is None:
            last.kill()
            last.wait(timeout=30)
        log.close()

    incremental = {name: view.dump() for name, view in projector.views.items()}
    projector.rebuild()
    rebuilt = {name: view.dump() for name, view in projector.views.items()}
    assert incremental == rebuilt

    # And the rebuilt views agree with the aggregates.
    rows = incremental["summary"]["dashboard_disputes"]
    for row in rows:
        dispute = app.get_dispute(AGENT, row["dispute_id"])
        assert (row["state"], row["version"], row["outcome"]) == (
            dispute.state,
            dispute.version,
            dispute.outcome,
        )
    opened = sum(
        r["n"] for r in incremental["daily"]["dashboard_daily_counts"] if r["metric"] == "opened"
    )
    assert opened == len(rows)
    assert writer.commands > 100
