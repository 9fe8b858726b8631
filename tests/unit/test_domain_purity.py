"""The domain imports no web framework or database driver and never reads the clock."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import services.dispute.domain as domain_package

DOMAIN_DIR = Path(domain_package.__file__).parent
ROOT = DOMAIN_DIR.parents[2]
FORBIDDEN_MODULES = [
    "fastapi", "starlette", "pydantic", "pydantic_settings", "uvicorn", "httpx",
    "psycopg", "psycopg_pool", "sqlite3", "eventsourcing.application",
    "eventsourcing.persistence", "eventsourcing.postgres", "eventsourcing.sqlite",
]  # fmt: skip
CLOCK_READS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "time_ns"}


def modules_loaded_by_importing_the_domain() -> set[str]:
    code = "import services.dispute.domain, sys; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


def test_importing_the_domain_loads_no_web_framework_or_database_driver() -> None:
    loaded = modules_loaded_by_importing_the_domain()
    assert "services.dispute.domain.dispute" in loaded and "eventsourcing.domain" in loaded
    for name in FORBIDDEN_MODULES:
        assert not any(m == name or m.startswith(f"{name}.") for m in loaded), name


def source_files() -> list[Path]:
    return [*sorted(DOMAIN_DIR.glob("*.py")), ROOT / "shared" / "money.py"]


@pytest.mark.parametrize("path", source_files(), ids=lambda p: p.name)
def test_no_domain_module_reads_the_wall_clock(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    calls = [
        ast.unparse(node.func)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCK_READS
    ]
    imports = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
        if alias.name in {"time", "SystemClock"}
        or getattr(node, "module", None) in {"time", "shared.clock"}
    ]
    assert calls == [] and imports == []


def test_the_clock_check_would_notice_a_clock_read() -> None:
    tree = ast.parse("from datetime import datetime\nx = datetime.now()")
    attrs = [n.func.attr for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute)]  # fmt: skip
    assert set(attrs) & CLOCK_READS == {"now"}
