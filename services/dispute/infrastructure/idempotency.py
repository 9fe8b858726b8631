"""Idempotency keys kept beside the events (Stripe's semantics).

Two tables per event store:

- `<events>_idempotency_claims`: who is executing a key now, and with which request
  (fingerprint). A claim ends the moment its holder does:
  - PostgreSQL: the claim is a session-level advisory lock on a connection held for the
    request. A process that dies, or a connection that breaks, ends the session, and
    PostgreSQL drops the lock at once: the retry executes (no lease to wait out).
  - SQLite: a row with a lease; a claim of a process that no longer runs (its pid
    leads the token) or whose lease ran out is taken over.
  A request releases its claim when it ends, however it ends.
- `<events>_idempotency_responses`: the first response to a key. A command's response
  row is inserted in the SAME transaction as its events (the recorder does it when
  `Application.save(..., idempotency=Completion(...))` is called), so a response is
  stored if and only if the events are: a retry after a lost response replays it. The
  primary key makes a second completion of one key fail, which rolls back its events:
  even a taken-over claim executes once.

Times are wall-clock epoch seconds (never the sandbox clock: leases and retention are
about real time).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def headers_json(self) -> str:
        return json.dumps(dict(self.headers), sort_keys=True)

    @classmethod
    def from_row(cls, status: int, headers: str, body: bytes) -> StoredResponse:
        return cls(status=int(status), headers=json.loads(headers), body=bytes(body))


@dataclass(frozen=True)
class Claim:
    principal: str
    key: str
    fingerprint: str
    # The claiming process's pid first (SQLite takes over a dead process's claim).
    token: str = field(default_factory=lambda: f"{os.getpid()}-{secrets.token_hex(12)}")


@dataclass(frozen=True)
class Completion:
    """Passed to `Application.save(idempotency=...)`: the response to store with the events."""

    claim: Claim
    response: StoredResponse


@dataclass(frozen=True)
class Claimed:
    """The caller holds the key and must execute, then complete or release it."""

    claim: Claim


@dataclass(frozen=True)
class Replay:
    """The key already has a response for the same request."""

    response: StoredResponse


@dataclass(frozen=True)
class Reused:
    """The key was used for a different request."""


@dataclass(frozen=True)
class InProgress:
    """Another request holds the key and has not finished."""


ClaimResult = Claimed | Replay | Reused | InProgress


def fingerprint(method: str, path: str, body: bytes) -> str:
    """Method, path and a canonical hash of the JSON body (key order and spacing ignored)."""
    try:
        canonical = json.dumps(
            json.loads(body) if body.strip() else None,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), canonical):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyStore(ABC):
    """What a recorder offers besides events. Each call is its own short transaction."""

    @abstractmethod
    def try_claim(self, claim: Claim, now: float, lease_seconds: float) -> ClaimResult:
        """Claims the key, or says why not (replay, reused, in progress)."""

    @abstractmethod
    def store_response(self, completion: Completion, now: float) -> StoredResponse:
        """Stores a response outside any event transaction (refusals that recorded
        nothing), unless the key has one already; returns the one stored."""

    @abstractmethod
    def release(self, claim: Claim) -> None:
        """Gives the key up (after its response is stored, or so that a retry executes)."""

    @abstractmethod
    def purge(self, older_than: float) -> int:
        """Deletes keys created before `older_than`; returns how many responses went."""


def response_params(completion: Completion, now: float) -> tuple[Any, ...]:
    claim, response = completion.claim, completion.response
    return (
        claim.principal,
        claim.key,
        claim.fingerprint,
        response.status,
        response.headers_json(),
        response.body,
        now,
    )
