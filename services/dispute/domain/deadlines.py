"""Deadline arithmetic: which deadlines a command leaves pending, and when they fall due.

A deadline is a `state.Deadline` (events carry it as its mapping). What each kind is (who
owes it, whether it can be extended, the time-out it fires) is `rules.DEADLINE_RULES`'s;
this module only computes due times and keeps the list of pending deadlines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from . import rules
from .errors import InvalidInput
from .policy import add_business_days, days_after
from .rules import DeadlineKind
from .state import Deadline

Deadlines = list[Deadline]

# Whom an appeal window is due from when the ruling went against both parties.
BOTH_PARTIES = "parties"


def deadline(kind: DeadlineKind, due_at: datetime, due_from: str | None = None) -> Deadline:
    """A deadline of `kind`, owed by whom the table says (or by `due_from`)."""
    owed_by = rules.DEADLINE_RULES[kind].owed_by if due_from is None else due_from
    if owed_by is None:
        raise ValueError(f"a {kind} deadline needs to say whom it is due from")
    return Deadline(kind, str(owed_by), due_at)


def without(deadlines: Sequence[Deadline], *kinds: DeadlineKind) -> Deadlines:
    return [d for d in deadlines if d.kind not in kinds]


def turn_to(deadlines: Sequence[Deadline], party: str, at: datetime, days: int) -> Deadlines:
    """The other party's turn to answer ends; `party`'s begins."""
    kept = without(deadlines, *rules.RESPONSE_DEADLINES.values())
    return [*kept, deadline(rules.RESPONSE_DEADLINES[party], days_after(at, days))]


def ruling(at: datetime, business_days: int) -> Deadlines:
    """An agent's review: the ruling is due within the SLA."""
    return [deadline(DeadlineKind.RULING, add_business_days(at, business_days))]


def appeal_ruling(at: datetime, business_days: int) -> Deadlines:
    return [deadline(DeadlineKind.APPEAL_RULING, add_business_days(at, business_days))]


def appeal_window(final_at: datetime, against: Sequence[str]) -> Deadlines:
    """The window in which the party (or parties) the ruling went against may appeal."""
    due_from = against[0] if len(against) == 1 else BOTH_PARTIES
    return [deadline(DeadlineKind.APPEAL_WINDOW, final_at, due_from)]


def info_request(deadlines: Sequence[Deadline], party: str, due_at: datetime) -> Deadlines:
    """A new information request of `party` replaces its open one."""
    kind = rules.INFO_REQUEST_DEADLINES[party]
    return [*without(deadlines, kind), deadline(kind, due_at)]


def info_answered(deadlines: Sequence[Deadline], party: str, answered: bool) -> Deadlines:
    """Answering its information request ends the party's deadline to answer."""
    if not answered:
        return list(deadlines)
    return without(deadlines, rules.INFO_REQUEST_DEADLINES[party])


def lapsed(deadlines: Sequence[Deadline], trigger: str, at: datetime) -> Deadlines:
    """The deadlines that fire `trigger` and are due at `at`."""
    kinds = rules.kinds_fired_by(trigger)
    return [d for d in deadlines if d.kind in kinds and d.due_at <= at]


def extended(
    deadlines: Sequence[Deadline], kind: object, until: datetime, at: datetime
) -> tuple[Deadlines, datetime]:
    """The deadlines with the pending one of `kind` moved to `until`, and its previous
    due time; refuses a kind that is not pending and extendable, or a time not later."""
    kinds = [d.kind.value for d in deadlines if d.kind in rules.EXTENDABLE_DEADLINES]
    if kind not in kinds:
        raise InvalidInput(
            "deadline",
            "pending_deadline",
            f"deadline must name a pending deadline: {', '.join(kinds)}",
        )
    current = next(d for d in deadlines if d.kind == kind)
    if until <= current.due_at or until <= at:
        raise InvalidInput(
            "until",
            "later_than_current",
            f"until must be later than the current due time {current.due_at.isoformat()}",
        )
    moved = [replace(d, due_at=until) if d is current else d for d in deadlines]
    return moved, current.due_at
