"""`make run`'s supervisor, on real child processes: a child that dies is started again
after a back-off that doubles while it keeps dying, the others are left alone, and a
child that refuses its configuration stops the launcher instead of looping."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.run import (
    BAD_CONFIGURATION,
    Backoff,
    Child,
    ConfigurationError,
    Supervisor,
    children_env,
    stack_children,
)
from shared.internal import DEV_SERVICE_TOKEN


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


PROGRAMS = {
    "crashes": python("import sys; sys.exit(3)"),
    "serves": python("import time; time.sleep(60)"),
    "misconfigured": python(f"import sys; sys.exit({BAD_CONFIGURATION})"),
}


@pytest.fixture
def made() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def supervisor(made: list[subprocess.Popen[bytes]], clock: Clock, *names: str) -> Supervisor:
    def launch(child: Child) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(PROGRAMS[child.module])
        made.append(process)
        return process

    lines: list[str] = []
    return Supervisor(
        [Child(name, name) for name in names],
        backoff=Backoff(first=0.5, most=4.0, stable=60.0),
        launch=launch,
        clock=clock,
        say=lines.append,
    )


def wait_dead(child: Child) -> None:
    assert child.process is not None
    child.process.wait(timeout=30)


def test_a_dead_child_restarts_after_a_doubling_back_off_and_the_others_keep_running(
    made: list[subprocess.Popen[bytes]],
) -> None:
    clock = Clock()
    sup = supervisor(made, clock, "crashes", "serves")
    sup.start_all()
    crashing, serving = sup.children
    assert serving.process is not None
    serving_pid = serving.process.pid

    waits = []
    for _ in range(5):
        wait_dead(crashing)
        sup.check()  # notices the death, schedules the restart
        assert crashing.restart_at is not None
        waits.append(crashing.restart_at - clock.now)
        first = crashing.process
        clock.now += waits[-1] - 0.01
        sup.check()
        assert crashing.process is first, "restarted before its back-off passed"
        clock.now += 0.01
        sup.check()
        assert crashing.process is not first
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0]  # doubling, capped at `most`
    assert crashing.restarts == 5
    assert serving.process.pid == serving_pid and serving.process.poll() is None


def test_a_child_that_ran_long_enough_starts_over_at_the_first_back_off(
    made: list[subprocess.Popen[bytes]],
) -> None:
    clock = Clock()
    sup = supervisor(made, clock, "crashes")
    sup.start_all()
    (child,) = sup.children
    for _ in range(3):
        wait_dead(child)
        sup.check()
        assert child.restart_at is not None
        clock.now = child.restart_at
        sup.check()
    assert child.deaths_in_a_row == 3
    clock.now += 61  # it "ran" a minute before this death
    wait_dead(child)
    sup.check()
    assert child.restart_at is not None and child.restart_at - clock.now == 0.5


def test_a_child_that_refuses_its_configuration_is_not_restarted(
    made: list[subprocess.Popen[bytes]],
) -> None:
    sup = supervisor(made, Clock(), "misconfigured")
    sup.start_all()
    wait_dead(sup.children[0])
    with pytest.raises(ConfigurationError, match="misconfigured"):
        sup.check()


def test_the_children_get_a_random_internal_token_unless_one_is_given() -> None:
    one, two = children_env({}), children_env({})
    token = one["DISPUTES_SERVICE_TOKEN"]
    assert token != two["DISPUTES_SERVICE_TOKEN"] and token != DEV_SERVICE_TOKEN
    assert len(token) >= 32
    assert children_env({"DISPUTES_SERVICE_TOKEN": "given-token-0123456789"}) == {
        "DISPUTES_SERVICE_TOKEN": "given-token-0123456789"
    }
    # Every child of one launcher shares the one token (the gateway presents it).
    tokens = {c.env["DISPUTES_SERVICE_TOKEN"] for c in stack_children({}) if c.env}
    assert len(tokens) == 1


def test_backoff_delays() -> None:
    backoff = Backoff(first=0.5, most=30.0)
    assert [backoff.delay(n) for n in range(1, 9)] == [0.5, 1, 2, 4, 8, 16, 30, 30]


def test_a_child_ends_when_the_launcher_is_killed(tmp_path: Path) -> None:
    """kill -9 of `make run` (or a closed terminal) must not leave the stack running
    with its ports taken: each child gets SIGTERM when the launcher dies."""
    pids = tmp_path / "child.pid"
    (tmp_path / "sleeper.py").write_text("import time\ntime.sleep(60)\n")
    root = Path(__file__).resolve().parents[2]
    launcher = subprocess.Popen(
        python(
            "import sys, time\n"
            "from services.run import Child, launch\n"
            "child = launch(Child('sleeper', 'sleeper', env=None))\n"
            f"open({str(pids)!r}, 'w').write(str(child.pid))\n"
            "time.sleep(60)\n"
        ),
        cwd=root,
        env={**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{tmp_path}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not (pids.exists() and pids.read_text()):
            assert time.monotonic() < deadline, "the launcher did not start its child"
            time.sleep(0.05)
        child = int(pids.read_text())
        os.kill(child, 0)  # running
        launcher.kill()
        launcher.wait(timeout=10)
        deadline = time.monotonic() + 10
        while _alive(child):
            assert time.monotonic() < deadline, "the child outlived the launcher"
            time.sleep(0.05)
    finally:
        launcher.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False
