"""Tamper evidence: a dispute's verification, and the Merkle log's signed checkpoints and
proofs (`GET /v1/audit/...`, agents and auditors)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from .values import Representation


class VerificationFinding(Representation):
    """One thing wrong with a stored history, named."""

    kind: str = Field(
        description="chain_broken, event_changed, events_swapped, event_deleted, "
        "history_truncated, case_deleted, event_not_in_tree, not_in_checkpoint, "
        "tree_rolled_back, tree_rewritten, tree_damaged, checkpoint_invalid"
    )
    version: int | None = Field(description="the version concerned, if one is")
    detail: str


class Verification(Representation):
    """GET /v1/disputes/{id}/verification: the dispute's hash chain recomputed, and its
    history compared with the Merkle log and the newest signed checkpoint."""

    dispute_id: str
    intact: bool = Field(
        description="every stored event verifies against the hash chain and the Merkle "
        "log, and the log against its newest signed checkpoint"
    )
    events: int = Field(description="stored events checked")
    head: str | None = Field(description="the recorded chain head (hex sha256)")
    first_invalid_version: int | None = Field(
        description="the first version that does not verify (changed, missing, reordered)"
    )
    findings: list[VerificationFinding] = Field(
        default_factory=list, description="each problem found, named; empty when intact"
    )
    checkpoint_size: int | None = Field(
        default=None, description="the tree size of the signed checkpoint checked against"
    )
    proved_events: int = Field(default=0, description="events proved included in that checkpoint")
    pending_events: int = Field(
        default=0, description="newer events not yet in the Merkle log (it lags the writes)"
    )
    checked_at: datetime


class Checkpoint(Representation):
    """A signed checkpoint of the Merkle log: a C2SP tlog-checkpoint in a signed note."""

    origin: str = Field(description="the log's name, also the signing key's name")
    tree_size: int = Field(description="events in the log")
    root_hash: str = Field(description="RFC 9162 root hash (hex)")
    time: datetime
    note: str = Field(description="the signed note itself, to keep and verify offline")
    key_hash: str = Field(description="the signing key's 4-byte hash (hex), as in the note")


class InclusionProof(Representation):
    """An RFC 9162 inclusion proof of one event in the tree of `tree_size` events."""

    aggregate_id: str
    version: int
    leaf_index: int
    tree_size: int
    event_hash: str = Field(description="SHA-256 of the event's canonical form (hex)")
    leaf_hash: str = Field(description="RFC 9162 leaf hash of (aggregate, version, event hash)")
    root_hash: str = Field(description="the root the proof leads to (hex)")
    proof: list[str] = Field(description="the audit path, nearest the leaf first (hex)")


class ConsistencyProof(Representation):
    """An RFC 9162 consistency proof: the tree of `second` events extends that of `first`."""

    first: int
    second: int
    first_root: str
    second_root: str
    proof: list[str] = Field(description="the consistency path (hex)")
