"""The base of every recorder of this service's own tables (besides the events').

The library's idiom, as in eventsourcing's `searchablecontent` example: an abstract
recorder per concern (`clock.SandboxClockRecorder`, `deadlines.PendingDeadlineRecorder`,
...) says what is stored; one subclass per backend (`postgres.tables`, `sqlite.tables`)
says how, and the backend's `Factory`, chosen by `PERSISTENCE_MODULE`, hands them out
(`backend.recorders_of`). A concern's statements that read the same on both databases are
written once, with the backend's placeholder (`p`) and column types; the rest (locks,
schema names, transactions) is the backend class's.

Every table lives in the events' own database: the PostgreSQL schema of the environment
(`POSTGRES_SCHEMA`), or the SQLite file.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID


class TableRecorder(ABC):
    """A recorder of some of this service's tables, on the events' datastore."""

    # What tells one database's SQL from the other's, set by each backend's class.
    p: ClassVar[str]  # the driver's placeholder
    ts_type: ClassVar[str]  # a time with a zone
    uid_type: ClassVar[str]  # a dispute id
    real_type: ClassVar[str]  # seconds since the epoch, as a float
    serial_key: ClassVar[str]  # an auto-incremented integer primary key

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore

    @abstractmethod
    def table(self, name: str) -> str:
        """The table's name as it appears in SQL (schema-qualified on PostgreSQL)."""

    @abstractmethod
    def transaction(self, *, commit: bool) -> AbstractContextManager[Any]:
        """A transaction and its cursor; a writing one takes the write lock first."""

    @abstractmethod
    def ddl(self) -> AbstractContextManager[Any]:
        """A transaction for creating tables, one process at a time."""

    @abstractmethod
    def rowcount(self, cursor: Any) -> int:
        """Rows the cursor's last statement changed."""

    # Values: timestamps are timestamptz on PostgreSQL, fixed-width UTC ISO text on SQLite
    # (so that text order is time order); dispute ids are uuid there, text here.

    @abstractmethod
    def ts(self, value: datetime | None) -> Any: ...

    @staticmethod
    def from_ts(value: Any) -> datetime | None:
        if value is None or isinstance(value, datetime):
            return value
        return datetime.fromisoformat(value)

    @abstractmethod
    def uid(self, value: UUID) -> Any: ...

    @staticmethod
    def from_uid(value: Any) -> UUID:
        return value if isinstance(value, UUID) else UUID(str(value))
