"""SQLite (the embedded default): `PERSISTENCE_MODULE=services.dispute.infrastructure.sqlite`.

The library's factory, with this service's event recorder (`events`: idempotent
responses and the hash chain in the events' transaction) and a recorder class per table
of this service (`tables`), all in the events' database file.
"""

from __future__ import annotations

from eventsourcing import sqlite as es_sqlite

from ..backend import Recorders as BaseRecorders
from .dashboards import SQLiteDashboardRecorder
from .events import IdempotentSQLiteApplicationRecorder
from .merkle import SQLiteMerkleTreeRecorder
from .tables import (
    SQLitePendingDeadlineRecorder,
    SQLiteQuarantineRecorder,
    SQLiteRelayPositionRecorder,
    SQLiteSandboxClockRecorder,
    SQLiteWebhookRecorder,
)

__all__ = ["Factory", "IdempotentSQLiteApplicationRecorder", "Recorders"]


class Recorders(BaseRecorders):
    datastore_class = es_sqlite.SQLiteDatastore
    sandbox_clock_recorder_class = SQLiteSandboxClockRecorder
    pending_deadline_recorder_class = SQLitePendingDeadlineRecorder
    quarantine_recorder_class = SQLiteQuarantineRecorder
    webhook_recorder_class = SQLiteWebhookRecorder
    relay_position_recorder_class = SQLiteRelayPositionRecorder
    dashboard_recorder_class = SQLiteDashboardRecorder
    merkle_tree_recorder_class = SQLiteMerkleTreeRecorder


class Factory(es_sqlite.SQLiteFactory, Recorders):
    application_recorder_class = IdempotentSQLiteApplicationRecorder
