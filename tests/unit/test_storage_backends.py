"""Two databases, one way: a recorder class per backend under `infrastructure/`, chosen
by the backend's Factory; nothing else in the service tells the databases apart."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from services.dispute.infrastructure import backend
from services.dispute.infrastructure.postgres import Recorders as PostgresRecorders
from services.dispute.infrastructure.sqlite import Recorders as SQLiteRecorders

SERVICE = Path(__file__).resolve().parents[2] / "services" / "dispute"
DRIVERS = ("psycopg", "sqlite3", "eventsourcing.postgres", "eventsourcing.sqlite")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    "module",
    [
        "scheduler.py",
        "pending_deadlines.py",
        "sandbox_clock.py",
        "quarantine.py",
        "delivery/store.py",
        "delivery/jetstream.py",
        *(f"projections/{p.name}" for p in sorted((SERVICE / "projections").glob("*.py"))),
        *(f"transparency/{p.name}" for p in sorted((SERVICE / "transparency").glob("*.py"))),
    ],
)
def test_storage_callers_import_no_database_driver(module: str) -> None:
    drivers = {m for m in imported_modules(SERVICE / module) if m.startswith(DRIVERS)}
    assert not drivers, f"{module} imports {sorted(drivers)}: ask infrastructure.backend"


def test_every_backend_has_a_recorder_for_every_concern() -> None:
    names = backend.Recorders.__annotations__
    concerns = [name for name in names if name.endswith("_recorder_class")]
    assert len(concerns) >= 5
    for recorders in (PostgresRecorders, SQLiteRecorders):
        for name in concerns:
            recorder_class = getattr(recorders, name)
            abstract = sorted(getattr(recorder_class, "__abstractmethods__", ()))
            assert not abstract, f"{recorders.__module__}.{name} lacks {abstract}"


def test_the_storage_adapters_import_nothing_of_the_service_above_them() -> None:
    """infrastructure -> audit -> application was a hidden import cycle."""
    code = (
        "import sys\n"
        "import services.dispute.infrastructure.postgres\n"
        "import services.dispute.infrastructure.sqlite\n"
        "print('\\n'.join(m for m in sys.modules if m.startswith('services.')))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    outside = [m for m in loaded if not m.startswith("services.dispute.infrastructure")]
    assert outside == ["services.dispute"], outside


def test_an_application_gets_its_factorys_recorders(tmp_path: Path) -> None:
    from services.dispute.application import DisputeApplication

    app = DisputeApplication(
        env={
            "PERSISTENCE_MODULE": "services.dispute.infrastructure.sqlite",
            "SQLITE_DBNAME": str(tmp_path / "events.db"),
        }
    )
    try:
        recorders = backend.recorders_of(app)
        assert recorders is app.factory  # type: ignore[comparison-overlap]
        on_datastore = backend.recorders_of(app.recorder.datastore)  # type: ignore[attr-defined]
        assert type(on_datastore) is SQLiteRecorders
        assert on_datastore.quarantine_recorder().datastore is app.recorder.datastore  # type: ignore[attr-defined]
    finally:
        app.close()


def test_a_store_without_tables_is_refused() -> None:
    with pytest.raises(TypeError, match="SQLite or PostgreSQL"):
        backend.recorders_of(object())
