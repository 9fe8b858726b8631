"""What each Dispute event does to the dashboard rows: pure functions, no storage.

The views (views.py) load the rows a batch of events touches, fold the events into them
here, and write them back in the transaction that records the batch's position.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from ..domain import Dispute, Order, order_id, rules

Row = dict[str, Any]

# name -> kind ("text", "int", "ts" for a timezone-aware time, "bool")
SUMMARY_COLUMNS: dict[str, str] = {
    "dispute_id": "text",
    "order_ref": "text",
    "buyer_id": "text",
    "seller_id": "text",
    "reason": "text",
    "requested_resolution": "text",
    "payment_method": "text",
    "currency": "text",
    "order_amount": "int",
    "requested_amount": "int",
    "state": "text",
    "version": "int",
    "opened_at": "ts",
    "seller_responded_at": "ts",
    "escalated_at": "ts",
    # the earliest pending deadline of any kind (SLA-only kinds included) ...
    "next_deadline_at": "ts",
    "next_deadline_kind": "text",
    # ... and the earliest one whose passing fires a time-out
    "next_timeout_at": "ts",
    "next_timeout_kind": "text",
    "settlement": "text",
    "refund_amount": "int",
    "refund_expected_by": "ts",
    "refund_failures": "int",
    "refunded_amount": "int",
    "refund_paid_at": "ts",
    "outcome": "text",
    "timeout_loss": "bool",
    "closed_at": "ts",
    "updated_at": "ts",
}

DEADLINE_COLUMNS: dict[str, str] = {
    "dispute_id": "text",
    "kind": "text",
    "due_from": "text",
    "due_at": "ts",
}

DAILY_COLUMNS: dict[str, str] = {"day": "text", "metric": "text", "key": "text", "n": "int"}
DAILY_STATE_COLUMNS: dict[str, str] = {"dispute_id": "text", "state": "text"}

# Daily metrics: disputes opened (by reason), disputes entering a state, disputes closed
# (by outcome).
OPENED, ENTERED, CLOSED = "opened", "entered", "closed"


def utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def day_of(value: datetime) -> str:
    return utc(value).date().isoformat()


def _next(deadlines: Iterable[Mapping[str, Any]]) -> tuple[datetime | None, str | None]:
    first = min(deadlines, key=lambda d: (utc(d["due_at"]), d["kind"]), default=None)
    return (utc(first["due_at"]), first["kind"]) if first else (None, None)


def deadline_rows(dispute_id: str, deadlines: Iterable[Mapping[str, Any]]) -> list[Row]:
    rows: dict[str, Row] = {}
    for d in deadlines:
        row = {
            "dispute_id": dispute_id,
            "kind": d["kind"],
            "due_from": str(d["due_from"]),
            "due_at": utc(d["due_at"]),
        }
        if d["kind"] not in rows or row["due_at"] < rows[d["kind"]]["due_at"]:
            rows[d["kind"]] = row
    return list(rows.values())


def new_summary(event: Dispute.Opened) -> Row:
    row: Row = dict.fromkeys(SUMMARY_COLUMNS)
    row.update(
        dispute_id=str(event.originator_id),
        order_ref=event.order_ref,
        buyer_id=event.buyer_id,
        seller_id=event.seller_id,
        reason=event.reason,
        requested_resolution=event.requested_resolution,
        payment_method=event.payment_method,
        currency=event.currency,
        order_amount=event.order_amount,
        requested_amount=event.amount,
        opened_at=utc(event.timestamp),
        refund_failures=0,
        timeout_loss=False,
    )
    return row


def fold_summary(row: Row | None, event: Dispute.Event) -> Row:
    """The summary row after `event` (a new row for `Opened`)."""
    if isinstance(event, Dispute.Opened):
        row = new_summary(event)
    assert row is not None, f"{type(event).__name__} before Opened for {event.originator_id}"
    row = dict(row)
    at = utc(event.timestamp)
    row["state"] = event.state
    row["version"] = event.originator_version
    row["updated_at"] = at
    row["next_deadline_at"], row["next_deadline_kind"] = _next(event.deadlines)
    row["next_timeout_at"], row["next_timeout_kind"] = _next(
        d for d in event.deadlines if rules.DEADLINES.get(d["kind"])
    )
    if event.state == rules.CLOSED and row["closed_at"] is None:
        row["closed_at"] = at
    if isinstance(event, (Dispute.SellerRejected, Dispute.OfferMade)) or (
        isinstance(event, Dispute.Settled) and event.actor_role == "seller"
    ):
        row["seller_responded_at"] = row["seller_responded_at"] or at
    if isinstance(event, Dispute.Settled):
        row["settlement"] = event.resolution.get("settlement")
        row["outcome"] = event.outcome
        if event.refund:
            _refund_started(row, event.refund)
        if isinstance(event, Dispute.SellerResponseLapsed):
            row["timeout_loss"] = True
    elif isinstance(event, Dispute.RefundStarted):
        _refund_started(row, event.refund)
    elif isinstance(event, (Dispute.Escalated, Dispute.ReturnContested)):
        row["escalated_at"] = at
    elif isinstance(
        event,
        (
            Dispute.Withdrawn,
            Dispute.BuyerResponseLapsed,
            Dispute.ReturnShipmentLapsed,
            Dispute.ChargedBack,
        ),
    ):
        row["outcome"] = event.outcome
    elif isinstance(event, Dispute.RefundFailed):
        row["refund_failures"] = (row["refund_failures"] or 0) + 1
    elif isinstance(event, Dispute.RefundPaid):
        row["refunded_amount"] = row["refund_amount"]
        row["refund_paid_at"] = utc(event.paid_at)
        row["outcome"] = event.outcome
    return row


def _refund_started(row: Row, refund: Mapping[str, Any]) -> None:
    row["refund_amount"] = refund["amount"]
    row["refund_expected_by"] = utc(refund["expected_by"])


def fold_daily(
    previous_state: str | None, event: Dispute.Event, counts: Counter[tuple[str, str, str]]
) -> str:
    """Adds the event's daily increments to `counts`; returns the dispute's new state."""
    day = day_of(event.timestamp)
    if isinstance(event, Dispute.Opened):
        counts[(day, OPENED, event.reason)] += 1
        previous_state = None
    if event.state != previous_state:
        counts[(day, ENTERED, event.state)] += 1
        if event.state == rules.CLOSED:
            counts[(day, CLOSED, getattr(event, "outcome", None) or "unknown")] += 1
    return str(event.state)


# Orders, chargebacks and appeals ------------------------------------------------------

# One row per registered order (keyed by the order aggregate's id): the denominator of a
# seller's dispute rate, and the dispute's reason once one is opened.
ORDER_COLUMNS: dict[str, str] = {
    "order_key": "text",
    "order_ref": "text",
    "seller_id": "text",
    "buyer_id": "text",
    "currency": "text",
    "amount": "int",
    "registered_at": "ts",
    "dispute_id": "text",
    "reason": "text",
}

CHARGEBACK_COLUMNS: dict[str, str] = {
    "order_key": "text",
    "reference": "text",
    "order_ref": "text",
    "seller_id": "text",
    "buyer_id": "text",
    "currency": "text",
    "amount": "int",
    "reason": "text",
    "opened_at": "ts",
    "recorded_at": "ts",
    "dispute_id": "text",
    "double_recovery": "bool",
    "amount_at_risk": "int",
}

# One row per dispute ruled with an appeal window (state `ruled`).
APPEAL_COLUMNS: dict[str, str] = {
    "dispute_id": "text",
    "ruled_at": "ts",
    "first_decision": "text",
    "first_amount": "int",
    "took_effect_at": "ts",
    "appealed_at": "ts",
    "appeal_by": "text",
    "decided_at": "ts",
    "final_decision": "text",
    "final_amount": "int",
    "overturned": "bool",
}

ORDER_EVENTS = (Order.Registered, Order.DisputeOpened, Order.ChargebackRecorded)
APPEAL_EVENTS = (
    Dispute.RulingIssued,
    Dispute.RulingTookEffect,
    Dispute.Appealed,
    Dispute.AppealRuled,
)


def order_key_of(event: Any) -> str | None:
    """The order row an event touches (None: none)."""
    if isinstance(event, ORDER_EVENTS):
        return str(event.originator_id)
    if isinstance(event, Dispute.Opened):
        return str(order_id(event.order_ref))
    return None


def fold_orders(
    orders: dict[str, Row], chargebacks: dict[tuple[str, str], Row], event: Any
) -> None:
    """Folds an Order event (or a dispute's Opened) into the order rows and the new
    chargeback rows, in place."""
    key = order_key_of(event)
    if key is None:
        return
    if isinstance(event, Order.Registered):
        orders[key] = {
            "order_key": key,
            "order_ref": event.order_ref,
            "seller_id": event.seller_id,
            "buyer_id": event.buyer_id,
            "currency": event.currency,
            "amount": event.amount,
            "registered_at": utc(event.timestamp),
            "dispute_id": None,
            "reason": None,
        }
        return
    row = orders.get(key)
    if row is None:  # an order registered before the view's first event: cannot happen
        return
    if isinstance(event, Order.DisputeOpened):
        row["dispute_id"] = event.dispute_id
    elif isinstance(event, Dispute.Opened):
        row["reason"] = event.reason
    elif isinstance(event, Order.ChargebackRecorded):
        chargebacks[(key, event.reference)] = {
            "order_key": key,
            "reference": event.reference,
            "order_ref": row["order_ref"],
            "seller_id": row["seller_id"],
            "buyer_id": row["buyer_id"],
            "currency": row["currency"],
            "amount": event.amount,
            "reason": event.reason,
            "opened_at": utc(event.opened_at),
            "recorded_at": utc(event.timestamp),
            "dispute_id": event.dispute_id,
            "double_recovery": event.double_recovery,
            "amount_at_risk": event.amount_at_risk,
        }


def fold_appeal(row: Row | None, event: Any) -> Row | None:
    """The appeal row of a dispute after `event` (created by a ruling with a window)."""
    at = utc(event.timestamp)
    if isinstance(event, Dispute.RulingIssued):
        return {
            **dict.fromkeys(APPEAL_COLUMNS),
            "dispute_id": str(event.originator_id),
            "ruled_at": at,
            "first_decision": event.decision,
            "first_amount": event.amount,
        }
    if row is None:
        return None
    row = dict(row)
    if isinstance(event, Dispute.RulingTookEffect):
        row["took_effect_at"] = at
    elif isinstance(event, Dispute.Appealed):
        row["appealed_at"], row["appeal_by"] = at, event.actor_role
    elif isinstance(event, Dispute.AppealRuled):
        row["decided_at"] = at
        row["final_decision"], row["final_amount"] = event.decision, event.amount
        row["overturned"] = (row["first_decision"], row["first_amount"]) != (
            event.decision,
            event.amount,
        )
    return row
