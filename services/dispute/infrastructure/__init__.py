"""Storage adapters: everything that tells SQLite from PostgreSQL, the library's way.

`PERSISTENCE_MODULE=services.dispute.infrastructure.postgres` (or `.sqlite`) selects a
backend package; its `Factory` is eventsourcing's, with this service's event recorder
(`events`: idempotent responses and the hash chain in the events' transaction) and one
recorder class per table of the service, handed out through `backend.recorders_of(app)`:

    concern (abstract recorder)       PostgreSQL / SQLite class
    clock.SandboxClockRecorder        postgres.tables / sqlite.tables
    deadlines.PendingDeadlineRecorder postgres.tables / sqlite.tables
    quarantine.QuarantineRecorder     postgres.tables / sqlite.tables
    webhooks.WebhookRecorder,         postgres.tables / sqlite.tables
      webhooks.RelayPositionRecorder
    dashboards.DashboardRecorder      postgres.dashboards / sqlite.dashboards
    merkle.MerkleTreeRecorder         postgres.merkle / sqlite.merkle

A table of a new concern: its abstract recorder here (statements that read the same on
both databases written once, with the backend's placeholder `p` and column types), a
subclass in each backend package, and a `*_recorder_class` on `backend.Recorders` that
each backend's `Recorders` sets. Nothing outside this package imports a database driver
(tests/unit/test_storage_backends.py checks it).
"""
