"""Histories stored by earlier code load with today's, on SQLite and on PostgreSQL.

`tests/fixtures/histories_cd54e3f.json` holds dispute events and snapshots exactly as
commit cd54e3f stored them (recorded with `tests/fixtures/record_histories.py` from a
SQLite store), and the state each dispute had then. Written into a new store as they
are, each must load, from its events and from its snapshot, into the same state, and
keep its topics, so the hash chain over stored events still holds.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping
from enum import Enum
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from services.dispute.application import DisputeApplication
from services.dispute.domain import Dispute

FIXTURE = Path(__file__).parents[1] / "fixtures" / "histories_cd54e3f.json"
HISTORIES: dict[str, Any] = json.loads(FIXTURE.read_text())


def plain(value: Any) -> Any:
    """State as plain data: value objects as the mappings they were stored as."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        as_dict = getattr(value, "as_dict", None)
        fields = as_dict() if as_dict else dataclasses.asdict(value)
        return plain(fields)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def state_of(dispute: Dispute) -> Any:
    return plain({k: v for k, v in vars(dispute).items() if k != "_pending_events"})


def stored(history: Mapping[str, Any], record: Mapping[str, Any]) -> StoredEvent:
    return StoredEvent(
        originator_id=UUID(history["id"]),
        originator_version=record["version"],
        topic=record["topic"],
        state=record["state"].encode(),
    )


@pytest.fixture
def app(backend: dict[str, str]) -> Iterator[DisputeApplication]:
    application = DisputeApplication(env={**backend, "IS_SNAPSHOTTING_ENABLED": "y"})
    yield application
    application.close()


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_old_events_load_into_the_state_they_had(app: DisputeApplication, name: str) -> None:
    history = HISTORIES[name]
    app.recorder.insert_events([stored(history, r) for r in history["events"]])
    dispute: Dispute = app.repository.get(UUID(history["id"]))
    expected = plain(app.mapper.transcoder.decode(history["expected"].encode()))
    assert state_of(dispute) == expected


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_old_snapshots_load_into_the_state_they_had(app: DisputeApplication, name: str) -> None:
    history = HISTORIES[name]
    assert app.snapshots is not None
    app.snapshots.recorder.insert_events([stored(history, history["snapshot"])])
    dispute: Dispute = app.repository.get(UUID(history["id"]))
    assert dispute.version == history["snapshot"]["version"]
    expected = plain(app.mapper.transcoder.decode(history["expected"].encode()))
    assert state_of(dispute) == expected


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_old_events_keep_their_topics(name: str) -> None:
    mapper = DisputeApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"}).mapper
    history = HISTORIES[name]
    for record in history["events"]:
        event = mapper.to_domain_event(stored(history, record))
        assert isinstance(event, Dispute.Event)
        assert get_topic(type(event)) == record["topic"]
        assert mapper.to_stored_event(event).topic == record["topic"]


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_a_snapshot_taken_now_holds_the_same_values_as_a_replay(
    app: DisputeApplication, name: str
) -> None:
    history = HISTORIES[name]
    dispute_id = UUID(history["id"])
    app.recorder.insert_events([stored(history, r) for r in history["events"]])
    replayed: Dispute = app.repository.get(dispute_id)
    app.take_snapshot(dispute_id)
    assert app.snapshots is not None
    [snapshot] = app.snapshots.recorder.select_events(dispute_id, desc=True, limit=1)
    assert b'"_type_":"dispute_policy"' in snapshot.state  # values, through transcodings
    from_snapshot: Dispute = app.repository.get(dispute_id)
    assert vars(from_snapshot) == vars(replayed)
