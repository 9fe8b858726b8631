"""Storage adapters: eventsourcing recorders that also keep idempotent responses.

`PERSISTENCE_MODULE=services.dispute.infrastructure.postgres` (or `.sqlite`) selects them.
"""
