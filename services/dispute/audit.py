"""Tamper evidence: a hash chain over each aggregate's stored events, and its verifier.

Every stored event carries `hash_n = sha256(hash_{n-1} || canonical(event_n))`, with
32 zero bytes before the first event; the recorders (services.dispute.infrastructure)
write it in the events' transaction (services.dispute.infrastructure.hashchain holds the
chain's functions). `canonical` is a fixed, length-prefixed encoding of
(originator_id, originator_version, topic, state), where state is the stored bytes.

This module touches no database: the service and the offline replayer
(`python -m services.dispute.audit replay FILE`) use the same `verify`.

CLI (services.dispute.audit_cli):
    python -m services.dispute.audit export --dispute ID [--out FILE] [--tree-size N]
    python -m services.dispute.audit export --all --out FILE
    python -m services.dispute.audit replay FILE
    python -m services.dispute.audit verify --key VKEY --checkpoint FILE EXPORT
    python -m services.dispute.audit verify --key VKEY --checkpoint OLD --newer NEW --proof P

An export also carries the Merkle log's evidence (services.dispute.transparency): a first
line `{"checkpoint": <signed note>}` and, on each event, its leaf index and inclusion
proof against that checkpoint; `verify` checks it offline against a checkpoint the
auditor holds.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from .infrastructure.hashchain import GENESIS, canonical, chain, link
from .infrastructure.hashchain import originator_text as _originator

__all__ = [
    "GENESIS",
    "Verification",
    "_originator",
    "canonical",
    "chain",
    "link",
    "main",
    "verify",
]


@dataclass(frozen=True)
class Verification:
    intact: bool
    events: int
    head: bytes | None  # the recorded chain head (the last stored hash)
    first_invalid_version: int | None


def verify(events: Sequence[StoredEvent], hashes: Mapping[int, bytes]) -> Verification:
    """Recomputes the chain of one aggregate's events (in stored order) against the
    stored hashes (by version). Names the first version that does not verify: whose
    recomputed hash differs or is missing, that is missing from the events (a gap, a
    deleted event) or out of order."""
    head = hashes[max(hashes)] if hashes else None
    previous = GENESIS
    bad: int | None = None
    for expected, event in enumerate(events, start=1):
        version = int(event.originator_version)
        if version != expected:
            bad = min(version, expected)
            break
        previous = link(previous, event)
        if hashes.get(version) != previous:
            bad = version
            break
    else:
        beyond = [v for v in hashes if v > len(events)]
        if beyond:  # a hash recorded for an event that is no longer stored
            bad = min(beyond)
    return Verification(bad is None, len(events), head, bad)


# Export and offline replay --------------------------------------------------------------


def export_lines(events: Iterable[StoredEvent], hashes: Mapping[int, bytes]) -> Iterator[str]:
    for event in events:
        recorded = hashes.get(int(event.originator_version))
        yield json.dumps(
            {
                "originator_id": _originator(event.originator_id),
                "originator_version": int(event.originator_version),
                "topic": event.topic,
                "state": base64.b64encode(bytes(event.state)).decode(),
                "hash": recorded.hex() if recorded is not None else None,
            },
            sort_keys=True,
        )


@dataclass
class Case:
    """One aggregate's records read back from an export file."""

    events: list[StoredEvent]
    hashes: dict[int, bytes]
    # The Merkle log's leaves of the case, as the exporting service's tree holds them:
    # {"version", "event_hash" (hex), "leaf_index", "proof" (hex list, against the
    # export's checkpoint; absent in a whole-log export)}. None: no tree evidence.
    tree: list[dict[str, Any]] | None = None


@dataclass
class Export:
    cases: dict[str, Case]
    checkpoint: str | None  # the signed note the proofs are against


def read_export(lines: Iterable[str]) -> dict[str, Case]:
    return read_export_file(lines).cases


def read_export_file(lines: Iterable[str]) -> Export:
    cases: dict[str, Case] = {}
    checkpoint = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if "checkpoint" in row:
                checkpoint = str(row["checkpoint"])
                continue
            if "case_tree" in row:
                case = cases.setdefault(_originator(row["case_tree"]), Case([], {}))
                case.tree = [dict(leaf) for leaf in row["leaves"]]
                continue
            originator_id = _originator(row["originator_id"])
            version = int(row["originator_version"])
            event = StoredEvent(
                originator_id=UUID(originator_id),
                originator_version=version,
                topic=str(row["topic"]),
                state=base64.b64decode(row["state"], validate=True),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {number}: not an exported event ({exc})") from None
        case = cases.setdefault(originator_id, Case([], {}))
        case.events.append(event)
        if row.get("hash"):
            case.hashes[version] = bytes.fromhex(row["hash"])
    return Export(cases, checkpoint)


def replay(cases: Mapping[str, Case]) -> list[dict[str, Any]]:
    """Verifies each case's chain and rebuilds it with the application's own mapper and
    aggregate classes over an in-memory store: no database, no service."""
    from services.dispute.application import DisputeApplication

    app = DisputeApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    results = []
    try:
        for originator_id, case in cases.items():
            verification = verify(case.events, case.hashes)
            result: dict[str, Any] = {
                "id": originator_id,
                "intact": verification.intact,
                "events": verification.events,
                "head": verification.head.hex() if verification.head else None,
                "first_invalid_version": verification.first_invalid_version,
            }
            try:
                ordered = sorted(case.events, key=lambda e: e.originator_version)
                app.recorder.insert_events(ordered)
                aggregate: Any = app.repository.get(UUID(originator_id))
                result.update(final_state(aggregate))
            except Exception as exc:  # a tampered event may not even decode
                result["error"] = f"cannot replay: {type(exc).__name__}: {exc}"
            results.append(result)
    finally:
        app.close()
    return results


def final_state(aggregate: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"type": type(aggregate).__name__, "version": aggregate.version}
    for name in ("state", "outcome", "refund"):
        if hasattr(aggregate, name):
            value = getattr(aggregate, name)
            state[name] = _plain(value)
    return state


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "as_dict"):  # a value object of the domain's state
        return _plain(value.as_dict())
    if hasattr(value, "value") and isinstance(value.value, (str, int)):
        return value.value  # an enum
    for attr in ("amount", "currency"):
        if not hasattr(value, attr):
            return str(value)
    return {"amount": _plain(value.amount), "currency": str(value.currency)}


def tree_ids(store: Any, page: int = 10_000) -> Iterator[UUID]:
    """Every aggregate the Merkle log holds, in feed order (a deleted case too)."""
    start = 0
    while leaves := store.leaves(start, page):
        for leaf in leaves:
            yield UUID(leaf.originator_id)
        start = leaves[-1].index + 1


def all_originator_ids(recorder: Any, page: int = 500) -> Iterator[UUID]:
    seen: set[str] = set()
    start = None
    while True:
        notifications = recorder.select_notifications(start, page, inclusive_of_start=start is None)
        if not notifications:
            return
        for n in notifications:
            key = _originator(n.originator_id)
            if key not in seen:
                seen.add(key)
                yield UUID(key)
        start = notifications[-1].id


def read_chain(recorder: Any, originator_id: UUID) -> tuple[list[StoredEvent], dict[int, bytes]]:
    """An aggregate's stored events and hashes, read consistently: hashes before and
    after the events must agree (a commit adds both at once), else read again."""
    for _ in range(5):
        before = dict(recorder.select_hashes(originator_id))
        events = list(recorder.select_events(originator_id))
        after = dict(recorder.select_hashes(originator_id))
        if before == after:
            return events, after
    return events, after


def main(argv: Sequence[str] | None = None) -> int:
    """The command (services.dispute.audit_cli)."""
    from services.dispute.audit_cli import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
