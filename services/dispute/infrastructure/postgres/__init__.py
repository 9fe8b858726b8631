"""PostgreSQL: `PERSISTENCE_MODULE=services.dispute.infrastructure.postgres`.

The library's factory, with this service's event recorder (`events`: idempotent
responses and the hash chain in the events' transaction), a datastore whose pool comes
back within a second after a fault (services.dispute.infrastructure.pool), and a recorder
class per table of this service (`tables`), all in the events' schema.
"""

from __future__ import annotations

from eventsourcing import postgres as es_postgres
from eventsourcing.utils import Environment, EnvType
from psycopg.sql import SQL, Identifier

from ..backend import Recorders as BaseRecorders
from ..pool import ResilientPostgresDatastore
from .dashboards import PostgresDashboardRecorder
from .events import BinaryReadsAggregateRecorder, IdempotentPostgresApplicationRecorder
from .merkle import PostgresMerkleTreeRecorder
from .tables import (
    PostgresPendingDeadlineRecorder,
    PostgresQuarantineRecorder,
    PostgresRelayPositionRecorder,
    PostgresSandboxClockRecorder,
    PostgresWebhookRecorder,
    serialised_ddl,
)

__all__ = ["Factory", "IdempotentPostgresApplicationRecorder", "Recorders", "serialised_ddl"]


class Recorders(BaseRecorders):
    datastore_class = es_postgres.PostgresDatastore
    sandbox_clock_recorder_class = PostgresSandboxClockRecorder
    pending_deadline_recorder_class = PostgresPendingDeadlineRecorder
    quarantine_recorder_class = PostgresQuarantineRecorder
    webhook_recorder_class = PostgresWebhookRecorder
    relay_position_recorder_class = PostgresRelayPositionRecorder
    dashboard_recorder_class = PostgresDashboardRecorder
    merkle_tree_recorder_class = PostgresMerkleTreeRecorder


class Factory(es_postgres.PostgresFactory, Recorders):
    aggregate_recorder_class = BinaryReadsAggregateRecorder  # the snapshots'
    application_recorder_class = IdempotentPostgresApplicationRecorder

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        # The library's datastore, on a pool that comes back within a second after a
        # fault (services.dispute.infrastructure.pool); not opened yet, so replaced.
        self.datastore = ResilientPostgresDatastore.like(self.datastore)
        if self.datastore.enable_db_functions:
            raise OSError(
                "POSTGRES_ENABLE_DB_FUNCTIONS skips the table lock that keeps the event "
                "feed in commit order, and the idempotency row: it is not supported"
            )
        if self.env_create_table():
            # eventsourcing creates its tables in the schema but not the schema itself.
            with self.datastore.get_connection() as conn:
                conn.execute(
                    SQL("CREATE SCHEMA IF NOT EXISTS {}").format(Identifier(self.datastore.schema))
                )
