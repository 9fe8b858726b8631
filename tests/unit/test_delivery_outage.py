"""A database outage is not a bug: the delivery loop waits it out without a traceback
per turn (the pool logs the outage once), while anything else keeps its traceback."""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace

import pytest

from services.dispute.delivery.webhooks import Deliverer
from services.dispute.infrastructure.pool import DatabaseUnavailable


def turns_of(failure: Exception, caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    stop = threading.Event()
    turns = []

    def run_once() -> bool:
        turns.append(1)
        if len(turns) == 3:
            stop.set()
        raise failure

    loop = SimpleNamespace(run_once=run_once, poll=0.0, _purge=lambda: None)
    with caplog.at_level(logging.DEBUG, logger="services.dispute.delivery"):
        Deliverer._loop(loop, stop)  # type: ignore[arg-type]
    assert len(turns) == 3  # it went on after each failure
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_an_outage_logs_no_traceback_per_turn(caplog: pytest.LogCaptureFixture) -> None:
    assert turns_of(DatabaseUnavailable("connection refused"), caplog) == []


def test_a_bug_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    records = turns_of(KeyError("bug"), caplog)
    assert len(records) == 3 and all(r.exc_info for r in records)
