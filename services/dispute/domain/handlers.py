"""The one registry of the dispute's actions: each command type and its handler.

A handler applies one command to a Dispute, as the actor and at the moment the Context
says; the Dispute checks the table and the values and records the event. The HTTP routes,
their OpenAPI entries and the permission check of each action are generated from this
registry (services.dispute.api.actions), and a test fails if it, the contract's action
bodies, the permission table and the transition table's action triggers disagree.

Adding an action: a command class in `commands.py`, a handler here, a row in the
transition table (`rules.py`); its body model in the contract and its permission row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from . import commands as c
from .dispute import Dispute
from .values import Context

C = TypeVar("C", bound=c.Command)
Handler = Callable[[Dispute, Context, C], None]

_HANDLERS: dict[type[c.Command], Handler[Any]] = {}


def handles(command_type: type[C]) -> Callable[[Handler[C]], Handler[C]]:
    """Registers the decorated function as the handler of `command_type` (one each)."""

    def register(handler: Handler[C]) -> Handler[C]:
        if command_type in _HANDLERS:
            raise ValueError(f"{command_type.__name__} has a handler already")
        _HANDLERS[command_type] = handler
        return handler

    return register


@handles(c.Accept)
def accept(dispute: Dispute, ctx: Context, command: c.Accept) -> None:
    dispute.accept(ctx)


@handles(c.Reject)
def reject(dispute: Dispute, ctx: Context, command: c.Reject) -> None:
    dispute.reject(ctx, reason=command.reason, evidence=command.evidence)


@handles(c.MakeOffer)
def offer(dispute: Dispute, ctx: Context, command: c.MakeOffer) -> None:
    dispute.offer(ctx, type=command.type, amount=command.amount, message=command.message)


@handles(c.AcceptOffer)
def accept_offer(dispute: Dispute, ctx: Context, command: c.AcceptOffer) -> None:
    dispute.accept_offer(ctx)


@handles(c.Revise)
def revise(dispute: Dispute, ctx: Context, command: c.Revise) -> None:
    dispute.revise(
        ctx,
        requested_resolution=command.requested_resolution,
        amount=command.amount,
        message=command.message,
    )


@handles(c.Escalate)
def escalate(dispute: Dispute, ctx: Context, command: c.Escalate) -> None:
    dispute.escalate(ctx, reason=command.reason)


@handles(c.Withdraw)
def withdraw(dispute: Dispute, ctx: Context, command: c.Withdraw) -> None:
    dispute.withdraw(ctx, reason=command.reason)


@handles(c.AddEvidence)
def add_evidence(dispute: Dispute, ctx: Context, command: c.AddEvidence) -> None:
    dispute.add_evidence(ctx, evidence=command.evidence)


@handles(c.PostMessage)
def post_message(dispute: Dispute, ctx: Context, command: c.PostMessage) -> None:
    dispute.post_message(ctx, body=command.body)


@handles(c.RequestInfo)
def request_info(dispute: Dispute, ctx: Context, command: c.RequestInfo) -> None:
    dispute.request_info(ctx, from_=command.from_, question=command.question, due_at=command.due_at)


@handles(c.Rule)
def rule(dispute: Dispute, ctx: Context, command: c.Rule) -> None:
    dispute.rule(
        ctx,
        decision=command.decision,
        amount=command.amount,
        return_shipping_paid_by=command.return_shipping_paid_by,
        rationale=command.rationale,
    )


@handles(c.Appeal)
def appeal(dispute: Dispute, ctx: Context, command: c.Appeal) -> None:
    dispute.file_appeal(ctx, reason=command.reason, evidence=command.evidence)


@handles(c.ShipReturn)
def ship_return(dispute: Dispute, ctx: Context, command: c.ShipReturn) -> None:
    dispute.ship_return(ctx, carrier=command.carrier, tracking_number=command.tracking_number)


@handles(c.ReturnDelivered)
def return_delivered(dispute: Dispute, ctx: Context, command: c.ReturnDelivered) -> None:
    dispute.return_delivered(ctx, delivered_at=command.delivered_at)


@handles(c.ConfirmReturn)
def confirm_return(dispute: Dispute, ctx: Context, command: c.ConfirmReturn) -> None:
    dispute.confirm_return(ctx)


@handles(c.ContestReturn)
def contest_return(dispute: Dispute, ctx: Context, command: c.ContestReturn) -> None:
    dispute.contest_return(ctx, reason=command.reason, evidence=command.evidence)


@handles(c.RefundPaid)
def refund_paid(dispute: Dispute, ctx: Context, command: c.RefundPaid) -> None:
    dispute.refund_paid(ctx, reference=command.reference, paid_at=command.paid_at)


@handles(c.RefundFailed)
def refund_failed(dispute: Dispute, ctx: Context, command: c.RefundFailed) -> None:
    dispute.refund_failed(ctx, reason=command.reason)


@handles(c.ExtendDeadline)
def extend_deadline(dispute: Dispute, ctx: Context, command: c.ExtendDeadline) -> None:
    dispute.extend_deadline(
        ctx, deadline=command.deadline, until=command.until, reason=command.reason
    )


# Every command type and its handler, in the order of the API's action routes.
HANDLERS: Mapping[type[c.Command], Handler[Any]] = MappingProxyType(_HANDLERS)
# Every command type by its action's name (`accept-offer`).
COMMANDS: Mapping[str, type[c.Command]] = MappingProxyType({t.action: t for t in _HANDLERS})


def apply(dispute: Dispute, ctx: Context, command: c.Command) -> None:
    """Applies `command` to `dispute` through its handler."""
    handler = HANDLERS.get(type(command))
    if handler is None:
        raise TypeError(f"{type(command).__name__} is not a command of the registry")
    handler(dispute, ctx, command)
