"""`Dispute.clone`: the copy the process keeps of each dispute (services.dispute.latest)
must not move when a command or an event changes the copy a caller was given. Every event
type of the recorded histories (tests/fixtures) is applied to a clone, step by step."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import StoredEvent

from services.dispute.application import DisputeApplication
from services.dispute.domain import Dispute

FIXTURE = Path(__file__).parents[1] / "fixtures" / "histories_cd54e3f.json"
HISTORIES: dict[str, Any] = json.loads(FIXTURE.read_text())
APP = DisputeApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})


def events_of(history: dict[str, Any]) -> list[Any]:
    return [
        APP.mapper.to_domain_event(
            StoredEvent(UUID(history["id"]), r["version"], r["topic"], r["state"].encode())
        )
        for r in history["events"]
    ]


def test_the_histories_cover_every_event_type() -> None:
    seen = {type(e).__name__ for h in HISTORIES.values() for e in events_of(h)}
    declared = {
        name for name, value in vars(Dispute).items()
        if isinstance(value, type) and issubclass(value, Dispute.Event) and name != "Event"
    }  # fmt: skip
    bases = {"Settled", "RefundStarted", "Created"}  # bases only, never recorded as such
    assert declared - bases <= seen


@pytest.mark.parametrize("name", sorted(HISTORIES))
def test_an_event_applied_to_a_clone_leaves_the_original_as_it_was(name: str) -> None:
    events = events_of(HISTORIES[name])
    original: Dispute = events[0].mutate(None)
    for event in events[1:]:
        before = copy.deepcopy(vars(original))
        twin = original.clone()
        twin = event.mutate(twin)
        assert vars(original) == before, type(event).__name__
        assert twin.version == original.version + 1
        original = event.mutate(copy.deepcopy(original))
        assert vars(twin) == vars(original), type(event).__name__


def test_a_clone_has_pending_events_of_its_own() -> None:
    history = HISTORIES[sorted(HISTORIES)[0]]
    dispute: Dispute = events_of(history)[0].mutate(None)
    twin = dispute.clone()
    assert twin.pending_events is not dispute.pending_events
    assert twin is not dispute and vars(twin) == vars(dispute)
