"""Tamper evidence: the hash chain over each aggregate's stored events.

Every stored event carries `hash_n = sha256(hash_{n-1} || canonical(event_n))`, with
32 zero bytes before the first event; the event recorders write it in the events'
transaction. `canonical` is a fixed, length-prefixed encoding of (originator_id,
originator_version, topic, state), where state is the stored bytes. Pure functions: the
recorders, the verifier (services.dispute.audit) and the Merkle log use the same ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from uuid import UUID

from eventsourcing.persistence import StoredEvent

GENESIS = bytes(32)


def originator_text(originator_id: UUID | str) -> str:
    """An aggregate id as text: a UUID's canonical form, else the string."""
    try:
        return str(UUID(str(originator_id)))
    except ValueError:
        return str(originator_id)


def canonical(event: StoredEvent) -> bytes:
    """A fixed byte encoding of one stored event: each part length-prefixed."""
    parts = (
        originator_text(event.originator_id).encode(),
        str(int(event.originator_version)).encode(),
        event.topic.encode(),
        bytes(event.state),
    )
    return b"".join(len(p).to_bytes(8, "big") + p for p in parts)


def link(previous: bytes, event: StoredEvent) -> bytes:
    return hashlib.sha256(previous + canonical(event)).digest()


def chain(events: Iterable[StoredEvent], previous: bytes = GENESIS) -> list[bytes]:
    """The hashes of consecutive events of one aggregate, after `previous`."""
    hashes = []
    for event in events:
        previous = link(previous, event)
        hashes.append(previous)
    return hashes
