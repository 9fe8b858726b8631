"""HTTP representations: aggregates and events as the contract's response shapes, and
the stored responses (status, headers, JSON body) the routes answer and replay."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid5

from pydantic import BaseModel, TypeAdapter

from services.dispute.domain import Actor, Dispute, Order, recommend, rules
from services.dispute.domain.state import Appeal, Ruling
from services.dispute.infrastructure.idempotency import StoredResponse
from services.dispute.operations import FeedPage
from shared import contract
from shared.permissions import SEES_RECOMMENDATION

# Fields every event has that the representation shows elsewhere (or not at all).
_EVENT_ENVELOPE = frozenset(
    {"originator_id", "originator_version", "timestamp", "actor_role", "actor_id",
     "correlation_id", "traceparent"}
)  # fmt: skip

# An event's id is derived from what makes it unique in the store, its aggregate and
# version: stable across reads, processes and rebuilds, the same for events stored before
# ids existed, and nothing to store. It is the `webhook-id` and `Nats-Msg-Id` of its
# deliveries, so a receiver deduplicates redeliveries with it.
EVENT_ID_NAMESPACE = UUID("6f1c3a52-9a0e-5b8e-8f43-2d7c1e5a9b10")


def event_id(originator_id: UUID | str, version: int) -> str:
    """The event's unique, stable id: a UUIDv5 of its aggregate's id and its version."""
    return str(uuid5(EVENT_ID_NAMESPACE, f"{UUID(str(originator_id))}/{version}"))


# The domain's plain strings as the contract's vocabularies, checked (a value outside
# the contract is an error here, not a malformed answer).
_STATE: TypeAdapter[contract.State] = TypeAdapter(contract.State)
_TURN: TypeAdapter[contract.PartyName | None] = TypeAdapter(contract.PartyName | None)
_REQUESTED: TypeAdapter[contract.RequestedResolution] = TypeAdapter(contract.RequestedResolution)
_OUTCOME: TypeAdapter[contract.Outcome | None] = TypeAdapter(contract.Outcome | None)


def _money(amount: int | None, currency: str) -> contract.Money | None:
    return None if amount is None else contract.Money(amount=amount, currency=currency)


class RecordFragments:
    """The JSON of each record a dispute lists (evidence, messages, information requests),
    validated by its contract model and serialized once, then reused by every answer.

    A case's records only grow, and a record is never changed once recorded (events
    append new ones; `Dispute.clone` relies on the same): validating and serializing all
    of them again for every answer made its cost grow with the case (0.6 ms of a
    command's 2.5 at 300 messages). The records of a dispute the process keeps
    (services.dispute.latest) are the same objects from answer to answer; a dispute read
    afresh holds new ones every time. So a list made mostly of records never met before
    is rendered whole, in one call, and only remembered as met; records met again get a
    fragment. A fragment or a mark is kept with its record, so a record's `id` cannot be
    reused while it is kept; the least recently made go first.
    """

    def __init__(self, maxsize: int = 50_000) -> None:
        self.maxsize = maxsize
        self._kept: OrderedDict[int, tuple[object, bytes]] = OrderedDict()
        self._met: OrderedDict[int, object] = OrderedDict()
        self._lock = threading.Lock()
        self._adapters: dict[type[BaseModel], TypeAdapter[list[Any]]] = {}

    def list_adapter(self, model: type[BaseModel]) -> TypeAdapter[list[Any]]:
        """The validator of a list of `model` records, all in one call (one Python call
        per record cost twice as much)."""
        adapter = self._adapters.get(model)
        if adapter is None:
            made: TypeAdapter[list[Any]] = TypeAdapter(list[model])  # type: ignore[valid-type]
            adapter = self._adapters.setdefault(model, made)
        return adapter

    def json_list(self, records: Sequence[object], model: type[BaseModel]) -> bytes:
        parts: list[bytes] = []
        missed: list[int] = []
        with self._lock:
            kept, met = self._kept, self._met
            for record in records:
                hit = kept.get(id(record))
                if hit is not None and hit[0] is record:
                    parts.append(hit[1])
                else:
                    missed.append(len(parts))
                    parts.append(b"")  # made below
            if not missed:
                return b"[" + b",".join(parts) + b"]"
            new = [i for i in missed if met.get(id(records[i])) is not records[i]]
            whole = 2 * len(new) > len(records)
            if whole:  # mostly records never met: a case read afresh, or met for the first time
                for i in new:
                    met[id(records[i])] = records[i]
                while len(met) > self.maxsize:
                    met.popitem(last=False)
        adapter = self.list_adapter(model)
        if whole:
            return adapter.dump_json(adapter.validate_python(records), by_alias=True)
        models = adapter.validate_python([records[i] for i in missed])
        made = [
            (i, m.model_dump_json(by_alias=True).encode())
            for i, m in zip(missed, models, strict=True)
        ]
        with self._lock:
            for i, fragment in made:
                parts[i] = fragment
                kept[id(records[i])] = (records[i], fragment)
                met.pop(id(records[i]), None)
            while len(kept) > self.maxsize:
                kept.popitem(last=False)
        return b"[" + b",".join(parts) + b"]"


RECORDS = RecordFragments()
# What the representation holds where its records go when rendered without them: the
# three lists, empty and adjacent, as `contract.Dispute` orders its fields. Text the case
# holds cannot contain it: its quotes are escaped in JSON.
_NO_RECORDS = b'"evidence":[],"messages":[],"info_requests":[]'


def _records(records: Sequence[object], model: type[BaseModel]) -> list[Any]:
    return RECORDS.list_adapter(model).validate_python(records)


def dispute_json(
    dispute: Dispute, actor: Actor, *, historical: bool = False, at: datetime | None = None
) -> bytes:
    """`dispute_view` as JSON: the same bytes, with the records' fragments from RECORDS."""
    body = dumps(dispute_view(dispute, actor, historical=historical, records=False, at=at))
    if body.count(_NO_RECORDS) != 1:  # never expected; the whole view then, made afresh
        return dumps(dispute_view(dispute, actor, historical=historical, at=at))
    records = (
        b'"evidence":' + RECORDS.json_list(dispute.evidence, contract.Evidence)
        + b',"messages":' + RECORDS.json_list(dispute.messages, contract.Message)
        + b',"info_requests":' + RECORDS.json_list(dispute.info_requests, contract.InfoRequest)
    )  # fmt: skip
    return body.replace(_NO_RECORDS, records, 1)


def dispute_view(
    dispute: Dispute,
    actor: Actor,
    *,
    historical: bool = False,
    records: bool = True,
    at: datetime | None = None,
) -> contract.Dispute:
    """The contract's representation; `records=False` leaves its three lists of records
    empty (see `dispute_json`). `allowed_actions` are those allowed at `at`, the service
    clock's now (a deadline that has passed closes what it guards even before the worker
    fires its time-out, as the command itself would refuse it); whatever the time if None."""
    cur = dispute.currency
    offer = dispute.standing_offer
    refund = dispute.refund
    ruling = dispute.ruling
    resolution = dispute.resolution
    shipment = dispute.return_shipment
    # `return` on the wire, a keyword in Python: passed by its alias.
    aliased: dict[str, Any] = {
        "return": None if shipment is None else contract.Return.model_validate(shipment.as_dict())
    }
    view = contract.Dispute(
        id=str(dispute.id),
        order_id=dispute.order_ref,
        buyer_id=dispute.buyer_id,
        seller_id=dispute.seller_id,
        state=_STATE.validate_python(dispute.state),
        turn=_TURN.validate_python(dispute.turn),
        reason=dispute.reason,
        description=dispute.description,
        requested_resolution=_REQUESTED.validate_python(dispute.requested_resolution),
        amount=contract.Money(amount=dispute.requested_amount, currency=cur),
        order_amount=contract.Money(amount=dispute.order_amount, currency=cur),
        payment_method=dispute.payment_method,
        version=dispute.version,
        deadlines=[contract.Deadline.model_validate(d.as_dict()) for d in dispute.deadlines],
        offer=None
        if offer is None
        else contract.Offer.model_validate(
            {**offer.as_dict(), "amount": _money(offer.amount, cur)}
        ),
        resolution=None
        if resolution is None
        else contract.Resolution.model_validate(
            {
                "settlement": resolution.settlement,
                "amount": _money(resolution.amount, cur),
                "via": resolution.via.replace("_", "-"),
            }
        ),
        outcome=_OUTCOME.validate_python(dispute.outcome),
        refund=None
        if refund is None
        else contract.Refund(
            amount=contract.Money(amount=refund.amount, currency=refund.currency),
            started_at=refund.started_at,
            expected_by=refund.expected_by,
            paid_at=refund.paid_at,
            reference=refund.reference,
            failures=[contract.RefundFailure.model_validate(f.as_dict()) for f in refund.failures],
        ),
        ruling=None if ruling is None else ruling_view(ruling, cur, _final_at(dispute)),
        appeal=None if dispute.appeal is None else appeal_view(dispute.appeal, cur),
        chargeback=None
        if dispute.chargeback is None
        else contract.DisputeChargeback(
            reference=dispute.chargeback["reference"],
            amount=contract.Money(amount=dispute.chargeback["amount"], currency=cur),
            at=dispute.chargeback["at"],
        ),
        evidence=_records(dispute.evidence, contract.Evidence) if records else [],
        messages=_records(dispute.messages, contract.Message) if records else [],
        info_requests=_records(dispute.info_requests, contract.InfoRequest) if records else [],
        escalated_at=dispute.escalated_at,
        opened_at=dispute.opened_at,
        closed_at=dispute.closed_at,
        policy_version=dispute.policy.version,
        # Nothing can be done to a past version: actions apply to the dispute as it is now.
        allowed_actions=[] if historical else dispute.allowed_actions(actor, at),
        **aliased,
    )
    if actor.role in SEES_RECOMMENDATION:
        rec = recommend(dispute)
        # Validated as data: the contract's vocabulary of recommendations has a `none`.
        view.recommendation = contract.Recommendation.model_validate(
            {
                "decision": rec.decision,
                "amount": _money(rec.amount, cur),
                "return_required": rec.return_required,
                "basis": rec.basis,
                "differs_from_ruling": rec.differs_from_ruling,
            }
        )
    return view


def _final_at(dispute: Dispute) -> datetime | None:
    """While `ruled`, the appeal window's end as it now stands (an agent may extend it);
    otherwise what the ruling recorded (a ruling recorded before appeals existed took
    effect when it was made)."""
    if dispute.state == rules.RULED:
        for deadline in dispute.deadlines:
            if deadline.kind == rules.DeadlineKind.APPEAL_WINDOW:
                return deadline.due_at
    return None if dispute.ruling is None else dispute.ruling.final_at


def ruling_view(ruling: Ruling, currency: str, final_at: datetime | None) -> contract.Ruling:
    return contract.Ruling.model_validate(
        {
            "decision": ruling.decision,
            "amount": _money(ruling.amount, currency),
            "return_shipping_paid_by": ruling.return_shipping_paid_by,
            "rationale": ruling.rationale,
            "by": ruling.agent_id,
            "agent_id": ruling.agent_id,
            "at": ruling.at,
            "final_at": final_at,
        }
    )


def appeal_view(appeal: Appeal, currency: str) -> contract.Appeal:
    assert appeal.first_ruling is not None  # an appeal is of a ruling on the record
    return contract.Appeal.model_validate(
        {
            "by": appeal.by,
            "by_id": appeal.by_id,
            "reason": appeal.reason,
            "at": appeal.at,
            "first_ruling": ruling_view(appeal.first_ruling, currency, None),
            "decided_at": appeal.decided_at,
            "decided_by": appeal.decided_by,
            "overturned": appeal.overturned,
        }
    )


def order_view(order: Order) -> contract.Order:
    return contract.Order(
        id=order.order_ref,
        buyer_id=order.buyer_id,
        seller_id=order.seller_id,
        amount=contract.Money(amount=order.amount, currency=order.currency),
        payment_method=order.payment_method,
        placed_at=order.placed_at,
        shipped_at=order.shipped_at,
        tracking=None if order.tracking is None else contract.Tracking(**order.tracking),
        delivered_at=order.delivered_at,
        protection_ends_at=order.protection_ends_at,
        extensions=[contract.ProtectionExtension.model_validate(e) for e in order.extensions],
        dispute_id=order.dispute_id,
        chargebacks=[
            contract.Chargeback(
                reference=c["reference"],
                amount=contract.Money(amount=c["amount"], currency=order.currency),
                reason=c["reason"],
                opened_at=c["opened_at"],
                recorded_at=c["recorded_at"],
                dispute_id=c["dispute_id"],
                double_recovery=c["double_recovery"],
                amount_at_risk=_money(c["amount_at_risk"], order.currency),
            )
            for c in getattr(order, "chargebacks", [])
        ],
        version=order.version,
    )


def jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def event_fields(event: Any) -> dict[str, Any]:
    payload = {k: v for k, v in event.__dict__.items() if k not in _EVENT_ENVELOPE}
    return {
        "id": event_id(event.originator_id, event.originator_version),
        "version": event.originator_version,
        "type": type(event).__qualname__.rsplit(".", 1)[-1],
        "at": event.timestamp,
        "actor": contract.Actor(
            role=getattr(event, "actor_role", ""), id=getattr(event, "actor_id", "")
        ),
        "request_id": getattr(event, "correlation_id", None),
        "traceparent": getattr(event, "traceparent", None),
        "payload": jsonable(payload),
    }


def event_view(event: Any) -> contract.Event:
    return contract.Event(**event_fields(event))


def feed_event_view(
    position: int, event: Any, order_ref: Callable[[UUID], str]
) -> contract.FeedEvent:
    stream: Literal["dispute", "order"]
    if isinstance(event, Dispute.Event):
        stream, stream_id = "dispute", str(event.originator_id)
    else:
        stream, stream_id = "order", order_ref(event.originator_id)
    return contract.FeedEvent(
        position=position, stream=stream, stream_id=stream_id, **event_fields(event)
    )


def feed_view(page: FeedPage) -> contract.EventFeed:
    return contract.EventFeed(
        events=[
            contract.FeedEvent(
                position=entry.position,
                stream=entry.stream,
                stream_id=entry.stream_id,
                **event_fields(entry.event),
            )
            for entry in page.entries
        ],
        next_after=page.next_after,
    )


def dumps(model: BaseModel) -> bytes:
    return model.model_dump_json(by_alias=True).encode()


def json_reply(
    model: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
) -> StoredResponse:
    return StoredResponse(
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
        body=dumps(model),
    )


def etag(version: int) -> str:
    return f'"{version}"'


def dispute_reply(
    dispute: Dispute,
    actor: Actor,
    status: int = 200,
    *,
    created: bool = False,
    historical: bool = False,
    at: datetime | None = None,
) -> StoredResponse:
    headers = {"ETag": etag(dispute.version)}
    if created:
        headers["Location"] = f"/v1/disputes/{dispute.id}"
    return StoredResponse(
        status=status,
        headers={"Content-Type": "application/json", **headers},
        body=dispute_json(dispute, actor, historical=historical, at=at),
    )


def order_reply(order: Order, status: int = 200, *, created: bool = False) -> StoredResponse:
    headers = {"ETag": etag(order.version)}
    if created:
        headers["Location"] = f"/v1/orders/{order.order_ref}"
    return json_reply(order_view(order), status, headers)
