"""The dashboard views' recorders are tracking recorders of the library's: its own test
cases pass on both backends, each view's position in a table of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import Tracking
from eventsourcing.sqlite import SQLiteDatastore
from eventsourcing.tests.persistence import TrackingRecorderTestCase

from services.dispute.infrastructure.dashboards import DashboardRecorder
from services.dispute.infrastructure.postgres.dashboards import PostgresDashboardRecorder
from services.dispute.infrastructure.sqlite.dashboards import SQLiteDashboardRecorder
from services.dispute.projections.read_models import SummaryView
from tests.conftest import PgConnInfo, postgres_datastore


class TestSQLiteDashboardRecorderPassesLibraryCases(TrackingRecorderTestCase):
    @pytest.fixture(autouse=True)
    def _store_dir(self, tmp_path: Path) -> None:
        self.db_path = tmp_path / "views.db"

    def create_recorder(self) -> SQLiteDashboardRecorder:
        datastore = SQLiteDatastore(str(self.db_path))
        recorder = SQLiteDashboardRecorder(datastore, "library_case", SummaryView.tables)
        recorder.create_table()
        return recorder


@pytest.mark.postgres
class TestPostgresDashboardRecorderPassesLibraryCases(TrackingRecorderTestCase):
    @pytest.fixture(autouse=True)
    def _schema(self, pg_conninfo: PgConnInfo, pg_schema: str) -> Any:
        self.datastore = postgres_datastore(pg_conninfo, pg_schema, pool_size=2)
        yield
        self.datastore.close()

    def create_recorder(self) -> PostgresDashboardRecorder:
        recorder = PostgresDashboardRecorder(self.datastore, "library_case", SummaryView.tables)
        recorder.create_table()
        return recorder


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_views(
    request: pytest.FixtureRequest, tmp_path: Path, pg_conninfo: PgConnInfo, pg_schema: str
) -> Any:
    if request.param == "sqlite":
        datastore: Any = SQLiteDatastore(str(tmp_path / "views.db"))
        make: Any = SQLiteDashboardRecorder
    else:
        datastore = postgres_datastore(pg_conninfo, pg_schema, pool_size=2)
        make = PostgresDashboardRecorder
    recorders = [make(datastore, name, SummaryView.tables) for name in ("view_a", "view_b")]
    for recorder in recorders:
        recorder.create_table()
    yield recorders
    datastore.close()


def test_each_view_keeps_its_own_position(two_views: list[DashboardRecorder]) -> None:
    a, b = two_views
    with a.transaction(commit=True) as curs:
        a.write_tracking(curs, Tracking("app", 7))
    assert a.max_tracking_id("app") == 7
    assert b.max_tracking_id("app") is None
    with b.transaction(commit=True) as curs:
        assert b.lock_position(curs, "app") is None
        b.write_tracking(curs, Tracking("app", 3))
    with a.transaction(commit=True) as curs:
        assert a.lock_position(curs, "app") == 7
        a.forget_position(curs, "app")
    assert (a.max_tracking_id("app"), b.max_tracking_id("app")) == (None, 3)
