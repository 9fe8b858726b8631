"""`shared/` is what both tiers need (the contract, the permission table, the development
token's name...): it imports neither tier, so the gateway can load it without the domain,
eventsourcing or transitions."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import shared

SHARED_DIR = Path(shared.__file__).parent
ROOT = SHARED_DIR.parent
MODULES = sorted(info.name for info in pkgutil.walk_packages([str(SHARED_DIR)], prefix="shared."))


def test_importing_every_shared_module_loads_no_service() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}: importlib.import_module(name)\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('services'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "shared.contract.vocabulary" in MODULES
    assert result.stdout.split() == []


@pytest.mark.parametrize(
    "path", sorted(SHARED_DIR.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_no_shared_module_names_a_service_in_an_import(path: Path) -> None:
    """Also an import inside a function, which importing the module does not run."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    imported = [
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
        )
    ]
    assert [name for name in imported if name.split(".")[0] == "services"] == []
