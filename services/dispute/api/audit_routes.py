"""The auditor's routes: whether a dispute's stored history is intact
(services.dispute.audit), and the Merkle log's checkpoints and proofs
(services.dispute.transparency)."""

# No `from __future__ import annotations`: FastAPI reads the Annotated parameters.

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from services.dispute.audit import _originator, verify
from services.dispute.domain import DisputeNotFound, InvalidInput, NotFound
from services.dispute.transparency.checkpoint import (
    Checkpoint,
    CheckpointError,
    Verifier,
    open_checkpoint,
)
from services.dispute.transparency.notary import CheckpointDirectory, signer_for
from services.dispute.transparency.tree import TreeStore, leaf_of
from services.dispute.transparency.verify import check_case
from shared import contract

from . import representations
from .dependencies import ActorDep, OperationsDep, SettingsDep
from .idempotency import to_response
from .problems import ApiProblem
from .routes import PROBLEMS

audit_router = APIRouter(prefix="/v1")

MAX_TREE_SIZE = 2**62
MAX_VERSION = 2**31 - 1
_lock = threading.Lock()


class Log:
    """The Merkle log as the service reads it: the tree's tables, the checkpoint
    directory (outside the database) and the key checkpoints must verify with."""

    def __init__(
        self, store: TreeStore, directory: CheckpointDirectory, key: Callable[[], Verifier]
    ) -> None:
        self.store = store
        self.directory = directory
        self._key = key
        self._verifier: Verifier | None = None

    @property
    def verifier(self) -> Verifier:
        """Read when first needed (a development key is made only then)."""
        if self._verifier is None:
            self._verifier = self._key()
        return self._verifier

    def latest(self) -> tuple[Checkpoint, str] | None:
        note = self.directory.latest()
        return (open_checkpoint(note, self.verifier), note) if note else None

    def at(self, size: int) -> tuple[Checkpoint, str] | None:
        note = self.directory.read(size)
        return (open_checkpoint(note, self.verifier), note) if note else None


def get_log(request: Request, operations: OperationsDep, settings: SettingsDep) -> Log:
    log: Log | None = getattr(request.app.state, "merkle_log", None)
    datastore = operations.datastore
    if log is None or log.store.datastore is not datastore:
        with _lock:
            store = TreeStore(datastore)
            if settings.create_tables:
                store.create_table()
            log = Log(
                store,
                CheckpointDirectory(settings.checkpoints_path),
                lambda: signer_for(settings).verifier,
            )
            request.app.state.merkle_log = log
    return log


LogDep = Annotated[Log, Depends(get_log)]


class CheckpointNotFound(NotFound):
    code = "checkpoint_not_found"

    def __init__(self, size: int | None) -> None:
        super().__init__("checkpoint", "(none yet)" if size is None else f"of size {size}")


def _checkpoint_reply(checkpoint: Checkpoint, note: str, verifier: Verifier) -> contract.Checkpoint:
    return contract.Checkpoint(
        origin=checkpoint.origin,
        tree_size=checkpoint.size,
        root_hash=checkpoint.root.hex(),
        time=checkpoint.time,
        note=note,
        key_hash=verifier.key_hash.hex(),
    )


def _held(log: Log, size: int | None) -> tuple[Checkpoint, str]:
    try:
        found = log.latest() if size is None else log.at(size)
    except CheckpointError as exc:
        # A published checkpoint this service's key did not sign: evidence, not a 500.
        raise ApiProblem(
            409, "checkpoint_invalid", "Checkpoint invalid", f"a published checkpoint: {exc}"
        ) from None
    if found is None:
        raise CheckpointNotFound(size)
    return found


@audit_router.get(
    "/disputes/{dispute_id}/verification",
    response_model=contract.Verification,
    responses=PROBLEMS,
    tags=["disputes"],
    summary="Recomputes the dispute's hash chain and checks it against the Merkle log",
)
def verify_dispute(
    dispute_id: contract.Id, operations: OperationsDep, actor: ActorDep, log: LogDep
) -> Response:
    history = operations.stored_history(actor, dispute_id)
    aggregate_id, events = history.aggregate_id, history.events
    report = check_case(log.store, log.directory, lambda: log.verifier, str(aggregate_id), events)
    if not events and not report.findings:
        raise DisputeNotFound(dispute_id)
    result = verify(events, history.hashes)
    findings = [
        contract.VerificationFinding(kind=f.kind, version=f.version, detail=f.detail)
        for f in report.findings
    ]
    if not result.intact:
        findings.insert(
            0,
            contract.VerificationFinding(
                kind="chain_broken",
                version=result.first_invalid_version,
                detail=f"the hash chain breaks at version {result.first_invalid_version}",
            ),
        )
    versions = [f.version for f in findings if f.version is not None]
    reply = contract.Verification(
        dispute_id=str(aggregate_id),
        intact=result.intact and not findings,
        events=result.events,
        head=result.head.hex() if result.head is not None else None,
        first_invalid_version=min(versions) if versions else None,
        findings=findings,
        checkpoint_size=report.checkpoint_size,
        proved_events=report.proved,
        pending_events=report.pending,
        checked_at=datetime.now(UTC),
    )
    return to_response(representations.json_reply(reply))


@audit_router.get(
    "/audit/checkpoint",
    response_model=contract.Checkpoint,
    responses=PROBLEMS,
    tags=["audit"],
    summary="The newest signed checkpoint of the Merkle log (auditor, agent)",
)
def latest_checkpoint(
    log: LogDep,
    _caller: ActorDep,  # authenticated; shared.permissions decides who may call
    tree_size: Annotated[
        int | None, Query(ge=1, le=MAX_TREE_SIZE, description="a given checkpoint instead")
    ] = None,
) -> Response:
    checkpoint, note = _held(log, tree_size)
    return to_response(
        representations.json_reply(_checkpoint_reply(checkpoint, note, log.verifier))
    )


@audit_router.get(
    "/audit/inclusion",
    response_model=contract.InclusionProof,
    responses=PROBLEMS,
    tags=["audit"],
    summary="An inclusion proof of one event in a checkpoint (auditor, agent)",
)
def inclusion_proof(
    log: LogDep,
    _caller: ActorDep,  # authenticated; shared.permissions decides who may call
    aggregate_id: Annotated[str, Query(max_length=64, description="a dispute's or order's id")],
    version: Annotated[int, Query(ge=1, le=MAX_VERSION)],
    tree_size: Annotated[
        int | None,
        Query(ge=1, le=MAX_TREE_SIZE, description="the checkpoint's size; default the newest"),
    ] = None,
) -> Response:
    try:
        key = _originator(UUID(aggregate_id))
    except ValueError:
        raise InvalidInput("aggregate_id", "uuid", "aggregate_id must be a UUID") from None
    checkpoint, _ = _held(log, tree_size)
    leaf = next((f for f in log.store.leaves_of(key) if f.version == version), None)
    if leaf is None or leaf.index >= checkpoint.size:
        raise NotFound("event in the checkpoint", f"{key} version {version}")
    proof = log.store.inclusion_proof(leaf.index, checkpoint.size)
    reply = contract.InclusionProof(
        aggregate_id=key,
        version=version,
        leaf_index=leaf.index,
        tree_size=checkpoint.size,
        event_hash=leaf.event_hash.hex(),
        leaf_hash=leaf_of(key, version, leaf.event_hash).hex(),
        root_hash=checkpoint.root.hex(),
        proof=[p.hex() for p in proof],
    )
    return to_response(representations.json_reply(reply))


@audit_router.get(
    "/audit/consistency",
    response_model=contract.ConsistencyProof,
    responses=PROBLEMS,
    tags=["audit"],
    summary="A consistency proof between two checkpoints (auditor, agent)",
)
def consistency_proof(
    log: LogDep,
    _caller: ActorDep,  # authenticated; shared.permissions decides who may call
    first: Annotated[int, Query(ge=1, le=MAX_TREE_SIZE, description="the older tree size")],
    second: Annotated[
        int | None,
        Query(ge=1, le=MAX_TREE_SIZE, description="the newer tree size; default the newest"),
    ] = None,
) -> Response:
    newer, _ = _held(log, second)
    if first > newer.size:
        raise InvalidInput("first", "at_most_second", "first must not exceed second")
    state = log.store.state()
    if state.size < newer.size:
        raise InvalidInput("second", "in_tree", "the tree holds fewer events than the checkpoint")
    proof = log.store.consistency_proof(first, newer.size) if first < newer.size else []
    reply = contract.ConsistencyProof(
        first=first,
        second=newer.size,
        first_root=log.store.root_at(first).hex(),
        second_root=newer.root.hex(),
        proof=[p.hex() for p in proof],
    )
    return to_response(representations.json_reply(reply))
