"""The auditor's routes: whether a dispute's stored history is intact (services.dispute.audit)."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from fastapi import APIRouter
from fastapi.responses import Response

from services.dispute.audit import read_chain, verify
from services.dispute.domain import DisputeNotFound
from shared import contract
from shared.permissions import SEES_EVERYTHING

from . import views
from .commands import to_response
from .dependencies import ActorDep, AppDep
from .routes import PROBLEMS

audit_router = APIRouter(prefix="/v1")


@audit_router.get(
    "/disputes/{dispute_id}/verification",
    response_model=contract.Verification,
    responses=PROBLEMS,
    tags=["disputes"],
    summary="Recomputes the dispute's hash chain: is its stored history intact?",
)
def verify_dispute(dispute_id: contract.Id, application: AppDep, actor: ActorDep) -> Response:
    if actor.role not in SEES_EVERYTHING:
        # Parties see their own cases only (404 otherwise), as with the dispute itself.
        aggregate_id = application.get_dispute(actor, dispute_id).id
    else:
        # Others see every case; the events are not decoded (a tampered one may not be).
        try:
            aggregate_id = UUID(dispute_id)
        except ValueError:
            raise DisputeNotFound(dispute_id) from None
    events, hashes = read_chain(application.recorder, aggregate_id)
    if not events or ".dispute:" not in events[0].topic.lower():
        raise DisputeNotFound(dispute_id)
    result = verify(events, hashes)
    reply = contract.Verification(
        dispute_id=str(aggregate_id),
        intact=result.intact,
        events=result.events,
        head=result.head.hex() if result.head is not None else None,
        first_invalid_version=result.first_invalid_version,
        checked_at=datetime.now(UTC),
    )
    return to_response(views.json_reply(reply))
