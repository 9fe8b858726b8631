"""What a backend's `Factory` hands out besides the library's recorders, and how a caller
finds it.

`PERSISTENCE_MODULE` (services.dispute.settings) names the backend package,
`services.dispute.infrastructure.postgres` or `.sqlite`; its `Factory` is one of
`Recorders`, with a recorder class per concern. A caller asks `recorders_of(app)` (or of
a datastore) and never tells the databases apart itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, ClassVar

from .clock import SandboxClockRecorder
from .dashboards import DashboardRecorder, Table
from .deadlines import PendingDeadlineRecorder
from .merkle import MerkleTreeRecorder
from .quarantine import QuarantineRecorder
from .webhooks import RelayPositionRecorder, WebhookRecorder

BACKENDS = ("services.dispute.infrastructure.postgres", "services.dispute.infrastructure.sqlite")


class Recorders:
    """The recorders of this service's own tables, on one datastore (the events')."""

    datastore_class: ClassVar[type[Any]]
    sandbox_clock_recorder_class: ClassVar[type[SandboxClockRecorder]]
    pending_deadline_recorder_class: ClassVar[type[PendingDeadlineRecorder]]
    quarantine_recorder_class: ClassVar[type[QuarantineRecorder]]
    webhook_recorder_class: ClassVar[type[WebhookRecorder]]
    relay_position_recorder_class: ClassVar[type[RelayPositionRecorder]]
    dashboard_recorder_class: ClassVar[type[DashboardRecorder]]
    merkle_tree_recorder_class: ClassVar[type[MerkleTreeRecorder]]

    datastore: Any

    @classmethod
    def on(cls, datastore: Any) -> Recorders:
        """The recorders on `datastore` (without a factory of its own)."""
        recorders = cls.__new__(cls)
        recorders.datastore = datastore
        return recorders

    def sandbox_clock_recorder(self) -> SandboxClockRecorder:
        return self.sandbox_clock_recorder_class(self.datastore)

    def pending_deadline_recorder(self) -> PendingDeadlineRecorder:
        return self.pending_deadline_recorder_class(self.datastore)

    def quarantine_recorder(self) -> QuarantineRecorder:
        return self.quarantine_recorder_class(self.datastore)

    def webhook_recorder(self) -> WebhookRecorder:
        return self.webhook_recorder_class(self.datastore)

    def relay_position_recorder(self) -> RelayPositionRecorder:
        return self.relay_position_recorder_class(self.datastore)

    def merkle_tree_recorder(self) -> MerkleTreeRecorder:
        return self.merkle_tree_recorder_class(self.datastore)

    def dashboard_recorder(self, view_name: str, tables: Sequence[Table]) -> DashboardRecorder:
        """A dashboard view's tables (and its position, `<view_name>_tracking`)."""
        return self.dashboard_recorder_class(self.datastore, view_name, tables)  # type: ignore[call-arg]


def recorders_of(app_or_datastore: Any) -> Recorders:
    """The recorders of an application (its factory's, as `PERSISTENCE_MODULE` chose
    it) or of a datastore (the backend whose datastore it is)."""
    factory = getattr(app_or_datastore, "factory", None)
    if isinstance(factory, Recorders):
        return factory
    recorder = getattr(app_or_datastore, "recorder", None)
    datastore = getattr(recorder, "datastore", None) if recorder is not None else app_or_datastore
    for name in BACKENDS:
        backend: type[Recorders] = importlib.import_module(name).Recorders
        if isinstance(datastore, backend.datastore_class):
            return backend.on(datastore)
    raise TypeError(
        f"unsupported datastore {type(datastore).__name__}: this service's tables need "
        "SQLite or PostgreSQL"
    )
