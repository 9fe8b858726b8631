"""The dispute's lifecycle as one transition table: the single source of truth.

`TRANSITIONS` is read by a module-level `transitions.Machine` used as a read-only rule
book (it is never bound to an aggregate, see ../shared/notes/libraries.md). Everything
that decides what is allowed reads it:

- the aggregate's guards (`destination`), before any event is recorded;
- the API's list of allowed actions for a caller (`allowed_actions`);
- the deadline worker (`due_timeouts`): a time-out is a trigger of the table, role system;
- the published diagram (`mermaid`).

Besides the parties' actions and the time-outs, one trigger is reported on the order
rather than taken on the dispute: `chargeback` (`POST /v1/orders/{id}/chargebacks`).

Conditions are names of pure methods of `Probe`, a throw-away object holding only the
facts a guard may look at. Three kinds of condition exist:
- role guards (`by_buyer`...): who may pull the trigger at all, from the one permission
  table (`shared/permissions.py`), never written in the rows;
- fact guards (`sellers_turn`, `seller_response_due`...): what the dispute's state allows,
  including who may act on it now: `ruling_went_against_caller` (who may appeal) and
  `not_the_first_ruling_agent` (four eyes: another agent decides an appeal), which read
  the caller's role and principal id;
- settlement guards (`settles_by_refund`...): which destination a resolution leads to,
  chosen by the terms being settled on (the buyer's request, an offer, a ruling).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from transitions import Machine

from shared import permissions

from .errors import ActionNotAllowed, RoleNotPermitted
from .values import Role, Settlement

AWAITING_SELLER = "awaiting_seller"
NEGOTIATING = "negotiating"
UNDER_REVIEW = "under_review"
RULED = "ruled"
UNDER_APPEAL = "under_appeal"
AWAITING_RETURN = "awaiting_return"
RETURN_IN_TRANSIT = "return_in_transit"
REFUND_PENDING = "refund_pending"
CLOSED = "closed"

STATES = [
    AWAITING_SELLER,
    NEGOTIATING,
    UNDER_REVIEW,
    RULED,
    UNDER_APPEAL,
    AWAITING_RETURN,
    RETURN_IN_TRANSIT,
    REFUND_PENDING,
    CLOSED,
]
OPEN_STATES = [s for s in STATES if s != CLOSED]
BEFORE_REFUND = [
    AWAITING_SELLER, NEGOTIATING, UNDER_REVIEW, RULED, UNDER_APPEAL, AWAITING_RETURN,
    RETURN_IN_TRANSIT,
]  # fmt: skip
REVIEWING = [UNDER_REVIEW, UNDER_APPEAL]  # an agent is deciding

# Where each kind of settlement leads.
_SETTLEMENT_DEST = {
    Settlement.REFUND: (REFUND_PENDING, "settles_by_refund"),
    Settlement.RETURN: (AWAITING_RETURN, "settles_by_return"),
    Settlement.REPLACEMENT: (CLOSED, "settles_by_replacement"),
    Settlement.NOTHING: (CLOSED, "settles_with_nothing"),
}


def _resolution(
    trigger: str,
    source: str | list[str],
    conditions: list[str],
    settlements: Sequence[Settlement],
) -> list[dict[str, Any]]:
    """Rows for a trigger that resolves the dispute: one per settlement it can lead to."""
    return [
        {
            "trigger": trigger,
            "source": source,
            "dest": _SETTLEMENT_DEST[s][0],
            "conditions": [*conditions, _SETTLEMENT_DEST[s][1]],
        }
        for s in settlements
    ]


_REQUEST = (Settlement.REFUND, Settlement.RETURN)  # what a buyer's request can be
_OFFER = (Settlement.REFUND, Settlement.RETURN, Settlement.REPLACEMENT)
_RULING = (Settlement.REFUND, Settlement.RETURN, Settlement.NOTHING)

# What may happen in which state. `dest: None` is a transition that stays in its state
# (an internal transition). Who may pull each trigger is not written here: it is the
# permission table's (shared/permissions.py), added to every row as its role guard below.
_TABLE: list[dict[str, Any]] = [
    # The seller's first answer
    *_resolution("accept", AWAITING_SELLER, [], _REQUEST),
    {"trigger": "reject", "source": AWAITING_SELLER, "dest": NEGOTIATING,
     "conditions": []},
    {"trigger": "offer", "source": AWAITING_SELLER, "dest": NEGOTIATING,
     "conditions": []},
    *_resolution(
        "seller_response_timeout", AWAITING_SELLER, ["seller_response_due"], _REQUEST
    ),
    # Negotiation: turns alternate; a party answers the other's standing proposal
    *_resolution("accept", NEGOTIATING, ["sellers_turn"], _REQUEST),
    {"trigger": "reject", "source": NEGOTIATING, "dest": None,
     "conditions": ["sellers_turn"]},
    {"trigger": "offer", "source": NEGOTIATING, "dest": None,
     "conditions": ["sellers_turn"]},
    *_resolution(
        "accept_offer", NEGOTIATING, ["buyers_turn", "has_standing_offer"], _OFFER
    ),
    {"trigger": "revise", "source": NEGOTIATING, "dest": None,
     "conditions": ["buyers_turn"]},
    {"trigger": "escalate", "source": NEGOTIATING, "dest": UNDER_REVIEW,
     "conditions": []},
    *_resolution(
        "seller_response_timeout",
        NEGOTIATING,
        ["sellers_turn", "seller_response_due"],
        _REQUEST,
    ),
    {"trigger": "buyer_response_timeout", "source": NEGOTIATING, "dest": CLOSED,
     "conditions": ["buyers_turn", "buyer_response_due"]},
    {"trigger": "withdraw", "source": [AWAITING_SELLER, NEGOTIATING, RULED, UNDER_APPEAL],
     "dest": CLOSED, "conditions": []},
    # Review by the marketplace
    {"trigger": "offer", "source": UNDER_REVIEW, "dest": None, "conditions": []},
    *_resolution("accept_offer", UNDER_REVIEW, ["has_standing_offer"], _OFFER),
    {"trigger": "request_info", "source": REVIEWING, "dest": None, "conditions": []},
    {"trigger": "info_request_timeout", "source": REVIEWING, "dest": None,
     "conditions": ["info_request_due"]},
    # The ruling: on the record for the appeal window, or at once when the window is 0
    {"trigger": "rule", "source": UNDER_REVIEW, "dest": RULED, "conditions": ["appeals_open"]},
    *_resolution("rule", UNDER_REVIEW, ["appeals_off"], _RULING),
    # Appeals: once, by the party the ruling went against, decided by another agent
    {"trigger": "appeal", "source": RULED, "dest": UNDER_APPEAL,
     "conditions": ["ruling_went_against_caller", "appeal_window_not_due"]},
    *_resolution("appeal_window_timeout", RULED, ["appeal_window_due"], _RULING),
    *_resolution("rule", UNDER_APPEAL, ["not_the_first_ruling_agent"], _RULING),
    # The return leg
    {"trigger": "ship_return", "source": AWAITING_RETURN, "dest": RETURN_IN_TRANSIT,
     "conditions": []},
    {"trigger": "return_shipment_timeout", "source": AWAITING_RETURN, "dest": CLOSED,
     "conditions": ["return_shipment_due"]},
    {"trigger": "return_delivered", "source": RETURN_IN_TRANSIT, "dest": None,
     "conditions": ["return_not_delivered"]},
    {"trigger": "confirm_return", "source": RETURN_IN_TRANSIT, "dest": REFUND_PENDING,
     "conditions": []},
    {"trigger": "contest_return", "source": RETURN_IN_TRANSIT, "dest": UNDER_REVIEW,
     "conditions": []},
    {"trigger": "return_confirmation_timeout", "source": RETURN_IN_TRANSIT,
     "dest": REFUND_PENDING, "conditions": ["return_confirmation_due"]},
    # The refund leg
    {"trigger": "refund_paid", "source": REFUND_PENDING, "dest": CLOSED,
     "conditions": []},
    {"trigger": "refund_failed", "source": REFUND_PENDING, "dest": None,
     "conditions": []},
    # The record, at any open stage
    {"trigger": "evidence", "source": BEFORE_REFUND, "dest": None, "conditions": []},
    {"trigger": "messages", "source": OPEN_STATES, "dest": None,
     "conditions": []},
    {"trigger": "extend_deadline", "source": OPEN_STATES, "dest": None,
     "conditions": ["has_extendable_deadline"]},
    # Reported on the order by the payments service: the card network decides now
    {"trigger": "chargeback", "source": OPEN_STATES, "dest": CLOSED, "conditions": []},
]  # fmt: skip


def role_guard(roles: Iterable[str]) -> str:
    """The name of the condition that a caller has one of `roles`: `by_seller`,
    `by_buyer_or_seller`..."""
    return "by_" + "_or_".join(sorted(roles))


def _with_role_guard(row: dict[str, Any]) -> dict[str, Any]:
    roles = permissions.action_roles(row["trigger"])
    if not roles:
        raise LookupError(f"the permission table names no role for {row['trigger']!r}")
    return {**row, "conditions": [role_guard(roles), *row["conditions"]]}


TRANSITIONS: list[dict[str, Any]] = [_with_role_guard(row) for row in _TABLE]

# Each deadline kind, whom it is due from, and the time-out trigger that fires when it
# passes (None: an SLA shown on dashboards, not a transition).
DEADLINES: dict[str, str | None] = {
    "seller_response": "seller_response_timeout",
    "buyer_response": "buyer_response_timeout",
    "info_request_buyer": "info_request_timeout",
    "info_request_seller": "info_request_timeout",
    "ruling": None,
    "appeal_window": "appeal_window_timeout",
    "appeal_ruling": None,
    "return_shipment": "return_shipment_timeout",
    "return_confirmation": "return_confirmation_timeout",
    "refund_payout": None,
}

# Each role guard of the table and the roles it lets through (from the permission table).
ROLE_GUARDS: dict[str, frozenset[str]] = {
    role_guard(roles): roles for roles in permissions.ACTIONS.values()
}
SETTLEMENT_GUARDS = frozenset(g for _, g in _SETTLEMENT_DEST.values())

MACHINE = Machine(
    model=None,
    states=STATES,
    transitions=TRANSITIONS,
    initial=AWAITING_SELLER,
    auto_transitions=False,
    send_event=False,
)

TRIGGERS: list[str] = list(dict.fromkeys(row["trigger"] for row in TRANSITIONS))
TIMEOUT_TRIGGERS: list[str] = list(dict.fromkeys(t for t in DEADLINES.values() if t))
# Triggers reported on the order, not taken on the dispute (no dispute action of the API).
ORDER_TRIGGERS: list[str] = list(permissions.REPORTED_ON_ORDER)
ACTION_TRIGGERS: list[str] = [
    t for t in TRIGGERS if t not in TIMEOUT_TRIGGERS and t not in ORDER_TRIGGERS
]
# SLA-only deadlines (no time-out): dashboards show them past due.
RULING_DEADLINES = ("ruling", "appeal_ruling")

# Whom each ruling decision goes against: who may appeal it.
APPEALABLE_BY: dict[str, tuple[str, ...]] = {
    "full_refund": (Role.SELLER.value,),
    "partial_refund": (Role.BUYER.value, Role.SELLER.value),
    "return_and_refund": (Role.SELLER.value,),
    "seller_favoured": (Role.BUYER.value,),
}


action_name = permissions.action_name


def trigger_for(action: str) -> str | None:
    trigger = action.replace("-", "_")
    return trigger if trigger in ACTION_TRIGGERS and action == action_name(trigger) else None


class DisputeFacts(Protocol):
    """What a guard may look at. The Dispute aggregate provides it."""

    state: str
    turn: str | None
    standing_offer: dict[str, Any] | None
    deadlines: list[dict[str, Any]]
    return_shipment: dict[str, Any] | None
    policy: dict[str, Any]
    ruling: dict[str, Any] | None


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
        return shipment is not None and shipment.get("delivered_at") is None

    def has_extendable_deadline(self) -> bool:
        return any(d["kind"] != "refund_payout" for d in self.facts.deadlines)

    def _due(self, *kinds: str) -> bool:
        return self.at is not None and any(
            d["kind"] in kinds and d["due_at"] <= self.at for d in self.facts.deadlines
        )

    def seller_response_due(self) -> bool:
        return self._due("seller_response")

    def buyer_response_due(self) -> bool:
        return self._due("buyer_response")

    def info_request_due(self) -> bool:
        return self._due("info_request_buyer", "info_request_seller")

    def return_shipment_due(self) -> bool:
        return self._due("return_shipment")

    def return_confirmation_due(self) -> bool:
        return self._due("return_confirmation")

    def appeal_window_due(self) -> bool:
        return self._due("appeal_window")

    def appeal_window_not_due(self) -> bool:
        return not self._due("appeal_window")

    # The dispute records the policy it was opened under; one opened before appeals
    # existed has no appeal window, so its ruling takes effect at once, as it did then.
    # One appeal window per dispute: a later ruling (a review of a contested return)
    # takes effect at once, so a dispute is appealed at most once.
    def appeals_open(self) -> bool:
        window = int(self.facts.policy.get("appeal_window_days", 0))
        return window > 0 and self.facts.ruling is None

    def appeals_off(self) -> bool:
        return not self.appeals_open()

    def ruling_went_against_caller(self) -> bool:
        ruling = self.facts.ruling
        return ruling is not None and self.role in APPEALABLE_BY.get(ruling["decision"], ())

    def not_the_first_ruling_agent(self) -> bool:
        """Four eyes: the agent deciding an appeal is not the one who ruled first."""
        ruling = self.facts.ruling
        return ruling is not None and bool(self.actor_id) and ruling["agent_id"] != self.actor_id

    # Settlement guards
    def settles_by_refund(self) -> bool:
        return self.settlement == Settlement.REFUND

    def settles_by_return(self) -> bool:
        return self.settlement == Settlement.RETURN

    def settles_by_replacement(self) -> bool:
        return self.settlement == Settlement.REPLACEMENT

    def settles_with_nothing(self) -> bool:
        return self.settlement == Settlement.NOTHING


def _passes(transition: Any, probe: Probe, skip: Iterable[str] = ()) -> bool:
    skipped = set(skip)
    return all(
        getattr(probe, cond.func)() == cond.target
        for cond in transition.conditions
        if cond.func not in skipped
    )


def _rows(trigger: str, state: str) -> list[Any]:
    if trigger not in MACHINE.events:
        return []
    return list(MACHINE.get_transitions(trigger=trigger, source=state))


def role_may(trigger: str, role: str) -> bool:
    """Whether `role` may ever pull `trigger`, in some state (the permission table)."""
    return role in permissions.action_roles(trigger)


def is_allowed(
    trigger: str,
    facts: DisputeFacts,
    role: str,
    at: datetime | None = None,
    actor_id: str = "",
) -> bool:
    """Whether the trigger is allowed now, whatever terms it would settle on."""
    probe = Probe(facts=facts, role=role, at=at, actor_id=actor_id)
    return any(_passes(t, probe, SETTLEMENT_GUARDS) for t in _rows(trigger, facts.state))


def allowed_actions(facts: DisputeFacts, role: str, actor_id: str = "") -> list[str]:
    """The API actions this caller may take now, in the table's order."""
    return [
        action_name(t) for t in ACTION_TRIGGERS if is_allowed(t, facts, role, actor_id=actor_id)
    ]


def check(trigger: str, facts: DisputeFacts, role: str, at: datetime, actor_id: str = "") -> None:
    """Refuses a trigger the role may never pull, or the dispute's state does not allow
    now (whatever terms it would settle on)."""
    if not role_may(trigger, role):
        raise RoleNotPermitted(action_name(trigger), role)
    if not is_allowed(trigger, facts, role, at, actor_id):
        raise _refusal(trigger, facts, role, actor_id)


def _refusal(trigger: str, facts: DisputeFacts, role: str, actor_id: str) -> ActionNotAllowed:
    return ActionNotAllowed(
        action_name(trigger),
        facts.state,
        allowed_actions(facts, role, actor_id) if role != Role.SYSTEM else [],
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
    raise _refusal(trigger, facts, role, actor_id)


def _why_not(trigger: str, facts: DisputeFacts, role: str) -> str:
    if facts.state == CLOSED:
        if trigger == "refund_paid" and getattr(facts, "outcome", None) == "chargeback":
            return "the dispute closed with a chargeback: no refund is paid for it"
        return "the dispute is closed"
    if trigger == "rule" and facts.state == UNDER_APPEAL:
        return "an agent other than the one who ruled first decides the appeal"
    if trigger == "appeal" and facts.state == RULED and facts.ruling is not None:
        against = APPEALABLE_BY.get(facts.ruling["decision"], ())
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
        (d for d in facts.deadlines if DEADLINES.get(d["kind"]) and d["due_at"] <= at),
        key=lambda d: d["due_at"],
    )
    fired: list[str] = []
    for deadline in due:
        trigger = DEADLINES[deadline["kind"]]
        assert trigger is not None
        if trigger not in fired and is_allowed(trigger, facts, Role.SYSTEM, at):
            fired.append(trigger)
    return fired


def next_timeout_at(facts: DisputeFacts) -> datetime | None:
    """When the earliest time-out of this dispute falls due (for the pending-deadline table)."""
    times = [d["due_at"] for d in facts.deadlines if DEADLINES.get(d["kind"])]
    return min(times) if times else None


@dataclass
class _Facts:
    state: str = AWAITING_SELLER
    turn: str | None = None
    standing_offer: dict[str, Any] | None = None
    deadlines: list[dict[str, Any]] = field(default_factory=list)
    return_shipment: dict[str, Any] | None = None
    policy: dict[str, Any] = field(default_factory=dict)
    ruling: dict[str, Any] | None = None


_NO_FACTS = _Facts()


def describe() -> dict[str, Any]:
    """The table as data: states, actions and transitions, for the API and docs."""
    rows = []
    for row in TRANSITIONS:
        sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
        for source in sources:
            rows.append(
                {
                    "trigger": row["trigger"],
                    "action": action_name(row["trigger"])
                    if row["trigger"] in ACTION_TRIGGERS
                    else None,
                    "source": source,
                    "dest": row["dest"] or source,
                    "conditions": list(row.get("conditions", [])),
                    "roles": sorted(r.value for r in Role if role_may_row(row, r.value)),
                }
            )
    return {
        "states": STATES,
        "initial": AWAITING_SELLER,
        "terminal": [CLOSED],
        "actions": [action_name(t) for t in ACTION_TRIGGERS],
        "timeouts": TIMEOUT_TRIGGERS,
        "reported_on_order": ORDER_TRIGGERS,
        "deadlines": [{"kind": kind, "timeout": trigger} for kind, trigger in DEADLINES.items()],
        "transitions": rows,
        "mermaid": mermaid(),
    }


def role_may_row(row: Mapping[str, Any], role: str) -> bool:
    probe = Probe(facts=_NO_FACTS, role=role)
    return all(getattr(probe, c)() for c in row.get("conditions", []) if c in ROLE_GUARDS)


_MERMAID: str | None = None


def mermaid() -> str:
    """The published diagram (Mermaid stateDiagram-v2), rendered from the same table."""
    global _MERMAID
    if _MERMAID is None:
        from transitions.extensions import GraphMachine

        class _DiagramModel:  # GraphMachine needs a model; nothing else uses this one
            pass

        model = _DiagramModel()
        GraphMachine(
            model=model,
            states=STATES,
            transitions=TRANSITIONS,
            initial=AWAITING_SELLER,
            auto_transitions=False,
            graph_engine="mermaid",
            show_conditions=True,
            title="Dispute lifecycle",
        )
        _MERMAID = str(model.get_graph().draw(None))  # type: ignore[attr-defined]
    return _MERMAID
