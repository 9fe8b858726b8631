"""The README's worked example, pasted into bash as it is, against the real stack (with
the sandbox on): every command succeeds, the id is captured without jq, and running it
a second time replays the same dispute."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from .stack import JWT_SECRET, SERVICE_TOKEN, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

ROOT = Path(__file__).parents[2]


def readme_example() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Trying it", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "no sh block under 'Trying it'"
    return match.group(1)


def run_example(stack: Stack) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTES_")}
    env.update(
        DISPUTES_API=stack.gateway_url,  # the README's "another port" advice
        DISPUTES_ENVIRONMENT="test",  # the token CLI signs as this stack's gateway checks
        DISPUTES_JWT_SECRET=JWT_SECRET,
        DISPUTES_SERVICE_TOKEN=SERVICE_TOKEN,
    )
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", readme_example()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_readme_example_runs_as_pasted_and_again(stack: Stack) -> None:
    first = run_example(stack)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "GNU" not in first.stderr and "jq" not in first.stderr
    dispute = re.search(r"^dispute (\S+)$", first.stdout, re.M)
    assert dispute, first.stdout
    assert "refused, as expected" in first.stdout
    assert "HTTP 409" in first.stderr  # the accept the state does not allow
    assert '"awaiting_seller"' in first.stdout  # the state machine's states
    again = run_example(stack)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"dispute {dispute.group(1)}" in again.stdout  # the same dispute, replayed
