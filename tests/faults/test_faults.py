"""Back within seconds after any single fault, with nothing acknowledged lost, nothing
applied twice and nothing refused that was applied (see harness.py).

The supervised stack (`services.run`) runs on a private PostgreSQL cluster under a
retrying load while each fault is injected in turn: `kill -9` of the dispute service,
the gateway, the worker and the projector (the supervisor restarts them); PostgreSQL
restarted with `-m immediate` under load and with the stack idle (the first command
after that must succeed at once); PostgreSQL down for 15 s; and last, `kill -9` of the
service while it advances the sandbox clock, whose retry must complete that one
advance, not add another. About a minute and a half.

`FAULTS_LONG=1` runs every fault three times and keeps PostgreSQL down for 40 s. The
figures (recovery seconds, errors seen) are printed by `make faults`, not asserted.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import in_ci

from .harness import FaultReport, available, run_all

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

LONG = os.environ.get("FAULTS_LONG", "").strip().lower() in {"1", "true", "yes"}
FAULTS = [
    "kill -9 service",
    "kill -9 gateway",
    "kill -9 worker",
    "kill -9 projector",
    "PostgreSQL restart -m immediate, under load",
    "PostgreSQL restart -m immediate, idle",
    f"PostgreSQL down {40 if LONG else 15} s",
    "kill -9 service during a sandbox clock advance of P6D",
]


@pytest.fixture(scope="module")
def reports() -> Iterator[dict[str, list[FaultReport]]]:
    why_not = available()
    if why_not is not None:
        if in_ci():
            pytest.fail(f"fault injection cannot run: {why_not}", pytrace=False)
        pytest.skip(why_not)
    results = run_all(down_seconds=40.0 if LONG else 15.0, rounds=3 if LONG else 1)
    by_name: dict[str, list[FaultReport]] = {}
    for report in results:
        by_name.setdefault(report.name, []).append(report)
    yield by_name


@pytest.mark.parametrize("fault", FAULTS)
def test_after_the_fault_nothing_is_lost_doubled_or_refused_yet_applied(
    reports: dict[str, list[FaultReport]], fault: str
) -> None:
    for report in reports[fault]:
        verdict = report.verdict
        assert verdict.acknowledged > 0, f"{fault}: no command was acknowledged"
        assert verdict.lost == [], f"{fault}: acknowledged but not stored"
        assert verdict.duplicated == [], f"{fault}: stored more than once"
        assert verdict.refused_but_applied == [], f"{fault}: refused, yet stored"
        assert verdict.gave_up == 0, f"{fault}: commands never answered: {verdict.errors}"


@pytest.mark.parametrize("fault", FAULTS)
def test_the_stack_answers_again_after_the_fault(
    reports: dict[str, list[FaultReport]], fault: str
) -> None:
    for report in reports[fault]:
        assert report.recovered_after is not None, f"{fault}: no success after the fault"


def test_the_first_command_after_an_idle_restart_succeeds(
    reports: dict[str, list[FaultReport]],
) -> None:
    for report in reports["PostgreSQL restart -m immediate, idle"]:
        assert report.verdict.acknowledged == 1
        assert report.verdict.errors == {}, report.verdict.errors  # no 503, no retry


def test_during_an_outage_the_service_says_it_is_not_ready_and_why(
    reports: dict[str, list[FaultReport]],
) -> None:
    for report in reports[FAULTS[-2]]:
        assert report.note.startswith("the service's /readyz during the outage: 503 ")
        assert "database unreachable" in report.note
