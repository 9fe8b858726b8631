"""What the transition table allows one dispute now.

The table's conditions (`rules.TRANSITIONS`) are names of pure methods of `Probe`, a
throw-away object holding only the facts a guard may look at. Three kinds of condition
exist:
- role guards (`by_buyer`...): who may pull the trigger at all, from the one permission
  table (`shared/permissions.py`), never written in the rows;
- fact guards (`sellers_turn`, `seller_response_due`...): what the dispute's state allows,
  including who may act on it now: `ruling_went_against_caller` (who may appeal) and
  `not_the_first_ruling_agent` (four eyes: another agent decides an appeal), which read
  the caller's role and principal id;
- settlement guards (`settles_by_refund`...): which destination a resolution leads to,
  chosen by the terms being settled on (the buyer's request, an offer, a ruling).

`check` and `destination` are what the aggregate asks before recording an event;
`allowed_actions` what the API lists; `due_timeouts` what the deadline worker fires.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from .errors import ActionNotAllowed, RoleNotPermitted
from .policy import Policy
from .rules import (
    ACTION_TRIGGERS,
    APPEALABLE_BY,
    AWAITING_SELLER,
    CLOSED,
    EXTENDABLE_DEADLINES,
    MACHINE,
    NEGOTIATING,
    ROLE_GUARDS,
    RULED,
    SETTLEMENT_GUARDS,
    UNDER_APPEAL,
    DeadlineKind,
    action_name,
    role_may,
    timeout_of,
)
from .state import Deadline, Offer, Return, Ruling
from .values import Role, Settlement


class DisputeFacts(Protocol):
    """What a guard may look at. The Dispute aggregate provides it."""

    state: str
    turn: str | None
    standing_offer: Offer | None
    deadlines: list[Deadline]
    return_shipment: Return | None
    policy: Policy
    ruling: Ruling | None


@dataclass(frozen=True)
class Probe:
    """The throw-away model the table's conditions are evaluated against."""

    facts: DisputeFacts
    role: str
    at: datetime | None = None
    settlement: str | None = None
    actor_id: str = ""

    # Role guards: `by_<role>[_or_<role>...]`, one per set of roles in the permission table
    def __getattr__(self, name: str) -> Any:
        roles = ROLE_GUARDS.get(name)
        if roles is None:
            raise AttributeError(name)
        return lambda: self.role in roles

    # Fact guards
    def sellers_turn(self) -> bool:
        return self.facts.turn == Role.SELLER

    def buyers_turn(self) -> bool:
        return self.facts.turn == Role.BUYER

    def has_standing_offer(self) -> bool:
        return self.facts.standing_offer is not None

    def return_not_delivered(self) -> bool:
        shipment = self.facts.return_shipment
        return shipment is not None and shipment.delivered_at is None

    def has_extendable_deadline(self) -> bool:
        return any(d.kind in EXTENDABLE_DEADLINES for d in self.facts.deadlines)

    def _due(self, *kinds: str) -> bool:
        return self.at is not None and any(
            d.kind in kinds and d.due_at <= self.at for d in self.facts.deadlines
        )

    def seller_response_due(self) -> bool:
        return self._due(DeadlineKind.SELLER_RESPONSE)

    def buyer_response_due(self) -> bool:
        return self._due(DeadlineKind.BUYER_RESPONSE)

    def info_request_due(self) -> bool:
        return self._due(DeadlineKind.INFO_REQUEST_BUYER, DeadlineKind.INFO_REQUEST_SELLER)

    def return_shipment_due(self) -> bool:
        return self._due(DeadlineKind.RETURN_SHIPMENT)

    def return_confirmation_due(self) -> bool:
        return self._due(DeadlineKind.RETURN_CONFIRMATION)

    def appeal_window_due(self) -> bool:
        return self._due(DeadlineKind.APPEAL_WINDOW)

    def appeal_window_not_due(self) -> bool:
        return not self._due(DeadlineKind.APPEAL_WINDOW)

    # The dispute records the policy it was opened under; one opened before appeals
    # existed has no appeal window, so its ruling takes effect at once, as it did then.
    # One appeal window per dispute: a later ruling (a review of a contested return)
    # takes effect at once, so a dispute is appealed at most once.
    def appeals_open(self) -> bool:
        return self.facts.policy.appeal_window_days > 0 and self.facts.ruling is None

    def appeals_off(self) -> bool:
        return not self.appeals_open()

    def ruling_went_against_caller(self) -> bool:
        ruling = self.facts.ruling
        return ruling is not None and self.role in APPEALABLE_BY.get(ruling.decision, ())

    def not_the_first_ruling_agent(self) -> bool:
        """Four eyes: the agent deciding an appeal is not the one who ruled first."""
        ruling = self.facts.ruling
        return ruling is not None and bool(self.actor_id) and ruling.agent_id != self.actor_id

    # Settlement guards
    def settles_by_refund(self) -> bool:
        return self.settlement == Settlement.REFUND

    def settles_by_return(self) -> bool:
        return self.settlement == Settlement.RETURN

    def settles_by_replacement(self) -> bool:
        return self.settlement == Settlement.REPLACEMENT

    def settles_with_nothing(self) -> bool:
        return self.settlement == Settlement.NOTHING


def _passes(transition: Any, probe: Probe, skip: frozenset[str] = frozenset()) -> bool:
    return all(
        getattr(probe, cond.func)() == cond.target
        for cond in transition.conditions
        if cond.func not in skip
    )


@functools.cache
def _rows(trigger: str, state: str) -> tuple[Any, ...]:
    """The table's rows for the trigger from the state (the machine is read-only: looked
    up once per pair; the API lists the allowed actions in every answer)."""
    if trigger not in MACHINE.events:
        return ()
    return tuple(MACHINE.get_transitions(trigger=trigger, source=state))


def _allowed(trigger: str, probe: Probe) -> bool:
    return any(_passes(t, probe, SETTLEMENT_GUARDS) for t in _rows(trigger, probe.facts.state))


def is_allowed(
    trigger: str,
    facts: DisputeFacts,
    role: str,
    at: datetime | None = None,
    actor_id: str = "",
) -> bool:
    """Whether the trigger is allowed now, whatever terms it would settle on."""
    return _allowed(trigger, Probe(facts=facts, role=role, at=at, actor_id=actor_id))


def allowed_actions(
    facts: DisputeFacts, role: str, actor_id: str = "", at: datetime | None = None
) -> list[str]:
    """The API actions this caller may take, in the table's order: at time `at` (a
    deadline that has passed by then closes what it guards, such as the appeal window),
    or whatever the time when `at` is None."""
    probe = Probe(facts=facts, role=role, at=at, actor_id=actor_id)
    return [action_name(t) for t in ACTION_TRIGGERS if _allowed(t, probe)]


def check(trigger: str, facts: DisputeFacts, role: str, at: datetime, actor_id: str = "") -> None:
    """Refuses a trigger the role may never pull, or the dispute's state does not allow
    now (whatever terms it would settle on)."""
    if not role_may(trigger, role):
        raise RoleNotPermitted(action_name(trigger), role)
    if not is_allowed(trigger, facts, role, at, actor_id):
        raise _refusal(trigger, facts, role, actor_id, at)


def _refusal(
    trigger: str, facts: DisputeFacts, role: str, actor_id: str, at: datetime | None
) -> ActionNotAllowed:
    return ActionNotAllowed(
        action_name(trigger),
        facts.state,
        allowed_actions(facts, role, actor_id, at) if role != Role.SYSTEM else [],
        why=_why_not(trigger, facts, role),
    )


def destination(
    trigger: str,
    facts: DisputeFacts,
    role: str,
    at: datetime,
    settlement: str | None = None,
    actor_id: str = "",
) -> str:
    """The state the trigger leads to, or the refusal that says why it cannot be pulled.

    Raises RoleNotPermitted when the role may never pull it, ActionNotAllowed when the
    dispute's state does not allow it now.
    """
    if not role_may(trigger, role):
        raise RoleNotPermitted(action_name(trigger), role)
    probe = Probe(facts=facts, role=role, at=at, settlement=settlement, actor_id=actor_id)
    for transition in _rows(trigger, facts.state):
        if _passes(transition, probe):
            return transition.dest if transition.dest is not None else facts.state
    raise _refusal(trigger, facts, role, actor_id, at)


def _why_not(trigger: str, facts: DisputeFacts, role: str) -> str:
    if facts.state == CLOSED:
        if trigger == "refund_paid" and getattr(facts, "outcome", None) == "chargeback":
            return "the dispute closed with a chargeback: no refund is paid for it"
        return "the dispute is closed"
    if trigger == "rule" and facts.state == UNDER_APPEAL:
        return "an agent other than the one who ruled first decides the appeal"
    if trigger == "appeal" and facts.state == RULED and facts.ruling is not None:
        against = APPEALABLE_BY.get(facts.ruling.decision, ())
        if role not in against:
            return f"the ruling did not go against the {role}"
        return "the appeal window has ended"
    if trigger == "appeal" and facts.state == UNDER_APPEAL:
        return "a ruling may be appealed once"
    if trigger in ("accept", "reject", "offer") and facts.state == NEGOTIATING:
        return "it is the buyer's turn" if facts.turn == Role.BUYER else ""
    seller_to_answer = facts.state == NEGOTIATING and facts.turn == Role.SELLER
    if trigger in ("accept_offer", "revise") and seller_to_answer:
        return "it is the seller's turn"
    if trigger == "accept_offer" and facts.standing_offer is None:
        return "there is no standing offer"
    return ""


def due_timeouts(facts: DisputeFacts, at: datetime) -> list[str]:
    """The time-out triggers the table allows at time `at`, in the order they fell due."""
    due = sorted(
        (d for d in facts.deadlines if timeout_of(d.kind) and d.due_at <= at),
        key=lambda d: d.due_at,
    )
    fired: list[str] = []
    for deadline in due:
        trigger = timeout_of(deadline.kind)
        assert trigger is not None
        if trigger not in fired and is_allowed(trigger, facts, Role.SYSTEM, at):
            fired.append(trigger)
    return fired


@dataclass
class _Facts:
    state: str = AWAITING_SELLER
    turn: str | None = None
    standing_offer: Offer | None = None
    deadlines: list[Deadline] = field(default_factory=list)
    return_shipment: Return | None = None
    policy: Policy = field(default_factory=Policy)
    ruling: Ruling | None = None


_NO_FACTS = _Facts()
