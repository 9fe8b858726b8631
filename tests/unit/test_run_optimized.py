"""`make run`, the end-to-end tests and the benchmark start the dispute service with
`python -O`: the library's per-event protocol assert is then gone from every replay."""

from __future__ import annotations

import subprocess
import sys

from services.run import OPTIMIZED_MODULES, command


def test_the_dispute_service_alone_runs_without_asserts() -> None:
    assert command("services.dispute") == [sys.executable, "-O", "-m", "services.dispute"]
    assert frozenset({"services.dispute"}) == OPTIMIZED_MODULES
    for other in ("services.gateway", "services.dispute.worker", "services.dispute.projections"):
        assert command(other) == [sys.executable, "-m", other]


def test_the_flag_reaches_the_interpreter() -> None:
    flags = command("services.dispute")[1:-2]
    probe = subprocess.run(
        [sys.executable, *flags, "-c", "assert False; print(__debug__)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.strip() == "False"
