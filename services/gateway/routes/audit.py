"""The Merkle log over every event: signed checkpoints and RFC 9162 proofs."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.

from typing import Annotated, Any

from fastapi import Query

from shared import contract

from .common import READ_PROBLEMS, RequestId, forwarding_router, roles

router = forwarding_router()

CHECKPOINT = "/v1/audit/checkpoint"
INCLUSION = "/v1/audit/inclusion"
CONSISTENCY = "/v1/audit/consistency"

TreeSize = Annotated[
    contract.TreeSize | None,
    Query(description="a signed checkpoint's tree size; default the newest"),
]


@router.get(
    CHECKPOINT,
    tags=["audit"],
    summary="The newest signed checkpoint of the Merkle log over every event "
    f"({roles('GET', CHECKPOINT)})",
    description="A C2SP tlog-checkpoint in a C2SP signed note (Ed25519), as published "
    "outside the database. Keep it: later proofs are checked against it offline. 404 "
    "checkpoint_not_found before the first checkpoint; 409 checkpoint_invalid if a "
    "published checkpoint does not verify with the log's key.",
    response_model=contract.Checkpoint,
    responses=READ_PROBLEMS,
)
def audit_checkpoint(tree_size: TreeSize = None, request_id: RequestId = None) -> Any: ...


@router.get(
    INCLUSION,
    tags=["audit"],
    summary="RFC 9162 inclusion proof of one event in a signed checkpoint "
    f"({roles('GET', INCLUSION)})",
    response_model=contract.InclusionProof,
    responses=READ_PROBLEMS,
)
def audit_inclusion(
    aggregate_id: Annotated[contract.AggregateId, Query(description="a dispute's or order's id")],
    version: Annotated[contract.LogVersion, Query()],
    tree_size: TreeSize = None,
    request_id: RequestId = None,
) -> Any: ...


@router.get(
    CONSISTENCY,
    tags=["audit"],
    summary=f"RFC 9162 consistency proof between two tree sizes ({roles('GET', CONSISTENCY)})",
    description="`second` must be a signed checkpoint's size (default the newest).",
    response_model=contract.ConsistencyProof,
    responses=READ_PROBLEMS,
)
def audit_consistency(
    first: Annotated[contract.TreeSize, Query(description="the older tree size")],
    second: TreeSize = None,
    request_id: RequestId = None,
) -> Any: ...
