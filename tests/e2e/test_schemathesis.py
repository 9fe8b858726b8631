"""Schemathesis against the real processes: the gateway's /openapi.json, every check,
once per role, zero failures.

Per role, the operations the permission table lets it call get every phase (examples,
coverage, fuzzing, stateful); the ones it may not call get a short fuzzing run (they
answer 403 before anything else, so more of them finds nothing new). Bounded examples
keep the whole file to about a minute. tests/e2e/schemathesis.toml says what the OpenAPI
document cannot (a 422 that depends on stored state). The figures of each run (test
cases, operations, failures) are printed; `pytest -s` shows them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.permissions import CALLER_ROLES, route_roles

from .stack import Stack

pytestmark = pytest.mark.e2e

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
CONFIG = Path(__file__).with_name("schemathesis.toml")
SEED = "10"
MAX_EXAMPLES = "2"


def operations(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, ops in document["paths"].items() for method in ops]


def config_for(role: str, allowed: bool, document: dict[str, Any], where: Path) -> Path:
    """The shared config, with the operations of the other half switched off."""
    off = []
    for method, path in operations(document):
        may = not path.startswith("/v1/") or role in route_roles(method, path)
        if may != allowed:
            off.append(f'\n[[operations]]\ninclude-name = "{method} {path}"\nenabled = false\n')
    target = where / f"schemathesis-{role}-{'allowed' if allowed else 'refused'}.toml"
    target.write_text(CONFIG.read_text() + "".join(off))
    return target


def run(stack: Stack, role: str, config: Path, phases: str, where: Path) -> dict[str, Any]:
    report = config.with_suffix(".json")
    command = [
        SCHEMATHESIS, "--config-file", str(config), "run", stack.gateway_url + "/openapi.json",
        "--checks", "all", "--phases", phases, "--max-examples", MAX_EXAMPLES,
        "--seed", SEED, "--workers", "1", "--request-timeout", "30",
        "-H", f"Authorization: Bearer {stack.token(role, f'{role}-st')}",
        "--report", "json", "--report-json-path", str(report),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=where)
    assert report.exists(), done.stdout[-4000:] + done.stderr[-2000:]
    result: dict[str, Any] = json.loads(report.read_text())
    assert done.returncode == 0 and not result["failures"] and not result["errors"], done.stdout[
        -8000:
    ]
    return result


def test_schemathesis_finds_nothing_for_any_role(stack: Stack, tmp_path: Path) -> None:
    document = httpx.get(stack.gateway_url + "/openapi.json", timeout=30).json()
    figures = []
    for role in sorted(CALLER_ROLES):
        for allowed, phases in ((True, "examples,coverage,fuzzing,stateful"), (False, "fuzzing")):
            config = config_for(role, allowed, document, tmp_path)
            result = run(stack, role, config, phases, tmp_path)
            figures.append(
                (
                    role,
                    "allowed" if allowed else "refused",
                    result["test_cases"]["generated"],
                    result["operations"]["tested"],
                    len(result["failures"]),
                )
            )
    total = sum(f[2] for f in figures)
    print(f"\nschemathesis {len(operations(document))} operations, seed {SEED}:")
    for role, half, cases, tested, failures in figures:
        print(
            f"  {role:8} {half:8} {cases:5} test cases, {tested:2} operations, {failures} failures"
        )
    print(f"  total    {total} test cases, 0 failures")
    assert all(f[4] == 0 for f in figures)
    assert all(f[3] > 0 for f in figures if f[1] == "allowed")
