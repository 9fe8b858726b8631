"""The dispute's lifecycle as one transition table: the single source of truth.

`TRANSITIONS` is read by a module-level `transitions.Machine` used as a read-only rule
book (it is never bound to an aggregate, see ../shared/notes/libraries.md). Everything
that decides what is allowed reads it:

- the aggregate's guards (`guards.destination`), before any event is recorded;
- the API's list of allowed actions for a caller (`guards.allowed_actions`);
- the deadline worker (`guards.due_timeouts`): a time-out is a trigger of the table;
- the published diagram (`mermaid`).

Besides the parties' actions and the time-outs, one trigger is reported on the order
rather than taken on the dispute: `chargeback` (`POST /v1/orders/{id}/chargebacks`).

`DEADLINE_RULES` is the other table: each deadline kind, who owes it, whether it can be
extended, the time-out it fires and whether it is only a service-level target. The
conditions named in the rows are evaluated by `guards.Probe`; `guards` also answers what
one dispute allows now.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from transitions import Machine

from shared import permissions

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


class DeadlineKind(StrEnum):
    SELLER_RESPONSE = "seller_response"
    BUYER_RESPONSE = "buyer_response"
    INFO_REQUEST_BUYER = "info_request_buyer"
    INFO_REQUEST_SELLER = "info_request_seller"
    RULING = "ruling"
    APPEAL_WINDOW = "appeal_window"
    APPEAL_RULING = "appeal_ruling"
    RETURN_SHIPMENT = "return_shipment"
    RETURN_CONFIRMATION = "return_confirmation"
    REFUND_PAYOUT = "refund_payout"


@dataclass(frozen=True)
class DeadlineRule:
    """What one kind of deadline is."""

    # Who must act before it passes; None: whoever the ruling went against
    # (`APPEALABLE_BY`), "parties" when it went against both.
    owed_by: Role | None
    # Whether an agent may move it (`extend_deadline`).
    extendable: bool
    # The time-out trigger that fires when it passes; None: nothing fires.
    timeout: str | None
    # A service-level target with no time-out: dashboards show it past due.
    sla_only: bool


# Every deadline kind and its attributes: the one place they are written.
DEADLINE_RULES: dict[DeadlineKind, DeadlineRule] = {
    DeadlineKind.SELLER_RESPONSE: DeadlineRule(
        Role.SELLER, extendable=True, timeout="seller_response_timeout", sla_only=False),
    DeadlineKind.BUYER_RESPONSE: DeadlineRule(
        Role.BUYER, extendable=True, timeout="buyer_response_timeout", sla_only=False),
    DeadlineKind.INFO_REQUEST_BUYER: DeadlineRule(
        Role.BUYER, extendable=True, timeout="info_request_timeout", sla_only=False),
    DeadlineKind.INFO_REQUEST_SELLER: DeadlineRule(
        Role.SELLER, extendable=True, timeout="info_request_timeout", sla_only=False),
    DeadlineKind.RULING: DeadlineRule(Role.AGENT, extendable=True, timeout=None, sla_only=True),
    DeadlineKind.APPEAL_WINDOW: DeadlineRule(
        None, extendable=True, timeout="appeal_window_timeout", sla_only=False),
    DeadlineKind.APPEAL_RULING: DeadlineRule(
        Role.AGENT, extendable=True, timeout=None, sla_only=True),
    DeadlineKind.RETURN_SHIPMENT: DeadlineRule(
        Role.BUYER, extendable=True, timeout="return_shipment_timeout", sla_only=False),
    DeadlineKind.RETURN_CONFIRMATION: DeadlineRule(
        Role.SELLER, extendable=True, timeout="return_confirmation_timeout", sla_only=False),
    DeadlineKind.REFUND_PAYOUT: DeadlineRule(
        Role.SERVICE, extendable=False, timeout=None, sla_only=False),
}  # fmt: skip

# Read-only views of the table.
DEADLINES: dict[str, str | None] = {k: r.timeout for k, r in DEADLINE_RULES.items()}
EXTENDABLE_DEADLINES = frozenset(k for k, r in DEADLINE_RULES.items() if r.extendable)
SLA_DEADLINES = tuple(k for k, r in DEADLINE_RULES.items() if r.sla_only)


def deadline_kind(value: object) -> DeadlineKind | None:
    """The deadline kind a stored or requested name stands for, or None."""
    if not isinstance(value, str) or value not in _DEADLINE_KINDS:
        return None
    return DeadlineKind(value)


_DEADLINE_KINDS = frozenset(k.value for k in DeadlineKind)


def timeout_of(kind: str) -> str | None:
    """The time-out trigger a deadline of this kind fires (None: none, or an unknown kind)."""
    known = deadline_kind(kind)
    return None if known is None else DEADLINE_RULES[known].timeout


def kinds_fired_by(trigger: str) -> frozenset[DeadlineKind]:
    """The deadline kinds whose passing fires this time-out trigger."""
    return frozenset(k for k, r in DEADLINE_RULES.items() if r.timeout == trigger)


def _by_party(kinds: Iterable[DeadlineKind]) -> dict[str, DeadlineKind]:
    return {str(DEADLINE_RULES[k].owed_by): k for k in kinds}


# The deadline of each party's turn to answer in a negotiation, and of its information
# request.
RESPONSE_DEADLINES = _by_party(
    kinds_fired_by("seller_response_timeout") | kinds_fired_by("buyer_response_timeout")
)
INFO_REQUEST_DEADLINES = _by_party(kinds_fired_by("info_request_timeout"))


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
TIMEOUT_TRIGGERS: list[str] = list(
    dict.fromkeys(r.timeout for r in DEADLINE_RULES.values() if r.timeout)
)
# Triggers reported on the order, not taken on the dispute (no dispute action of the API).
ORDER_TRIGGERS: list[str] = list(permissions.REPORTED_ON_ORDER)
ACTION_TRIGGERS: list[str] = [
    t for t in TRIGGERS if t not in TIMEOUT_TRIGGERS and t not in ORDER_TRIGGERS
]

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


def role_may(trigger: str, role: str) -> bool:
    """Whether `role` may ever pull `trigger`, in some state (the permission table)."""
    return role in permissions.action_roles(trigger)


class _WithDeadlines(Protocol):
    """An event: its deadlines as the mappings it carries."""

    @property
    def deadlines(self) -> Sequence[Mapping[str, Any]]: ...


def next_timeout_at(facts: _WithDeadlines) -> datetime | None:
    """When the earliest time-out of this dispute falls due (for the pending-deadline table)."""
    times = [d["due_at"] for d in facts.deadlines if timeout_of(d["kind"])]
    return min(times) if times else None


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
        "deadlines": [{"kind": k.value, "timeout": r.timeout} for k, r in DEADLINE_RULES.items()],
        "transitions": rows,
        "mermaid": mermaid(),
    }


def role_may_row(row: Mapping[str, Any], role: str) -> bool:
    """Whether the row's role guard lets `role` through."""
    return all(role in ROLE_GUARDS[c] for c in row.get("conditions", []) if c in ROLE_GUARDS)


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
