"""The domain's refusals: one small hierarchy, each with a stable code.

Nothing here knows about HTTP; the service maps these classes to status codes in one place.
When one of these is raised, nothing has been recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime


class DomainError(Exception):
    """A rule of the domain refused a command. `code` is stable; `message` is for people."""

    code = "domain_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(DomainError):
    """A value breaks a rule: names the field and the rule."""

    code = "invalid_input"

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


class ReasonNotCovered(InvalidInput):
    """'Changed my mind' is not a buyer-protection dispute."""

    code = "reason_not_covered"


class NotFound(DomainError):
    code = "not_found"

    def __init__(self, kind: str, ref: str) -> None:
        super().__init__(f"{kind} {ref} was not found")
        self.kind = kind
        self.ref = ref


class OrderNotFound(NotFound):
    code = "order_not_found"

    def __init__(self, ref: str) -> None:
        super().__init__("order", ref)


class DisputeNotFound(NotFound):
    code = "dispute_not_found"

    def __init__(self, ref: str) -> None:
        super().__init__("dispute", ref)


class RoleNotPermitted(DomainError):
    """The caller's role may never take this action."""

    code = "role_not_permitted"

    def __init__(self, action: str, role: str) -> None:
        super().__init__(f"a {role} may not {action}")
        self.action = action
        self.role = role


class ActionNotAllowed(DomainError):
    """The action exists for this role but the dispute's state does not allow it now."""

    code = "action_not_allowed"

    def __init__(self, action: str, state: str, allowed: Sequence[str], why: str = "") -> None:
        allowed_text = ", ".join(allowed) if allowed else "none"
        super().__init__(
            f"{action} is not allowed while the dispute is {state}"
            + (f" ({why})" if why else "")
            + f"; allowed now: {allowed_text}"
        )
        self.action = action
        self.state = state
        self.allowed = list(allowed)


class DisputeAlreadyExists(DomainError):
    """One dispute per order, ever: a closed or withdrawn dispute is not reopened."""

    code = "dispute_exists"

    def __init__(self, order_ref: str, dispute_id: str) -> None:
        super().__init__(
            f"order {order_ref} already has dispute {dispute_id}; "
            "a dispute cannot be opened twice or reopened"
        )
        self.order_ref = order_ref
        self.dispute_id = dispute_id


class ProtectionEnded(DomainError):
    code = "protection_ended"

    def __init__(self, order_ref: str, ended_at: datetime) -> None:
        super().__init__(
            f"buyer protection for order {order_ref} ended at {ended_at.isoformat()}; "
            "a dispute can no longer be opened"
        )
        self.order_ref = order_ref
        self.ended_at = ended_at


class OrderFactsConflict(DomainError):
    """Order facts only move forward: a recorded fact is never contradicted."""

    code = "order_facts_conflict"

    def __init__(self, field: str, recorded: object, given: object) -> None:
        super().__init__(
            f"order {field} is already recorded as {recorded!r} and cannot become {given!r}"
        )
        self.field = field
        self.recorded = recorded
        self.given = given


class ExtensionRefused(DomainError):
    code = "extension_refused"


class ConcurrentUpdate(DomainError):
    """Another command changed the dispute first; nothing was recorded. Retry on the new version."""

    code = "concurrent_update"

    def __init__(self, ref: str) -> None:
        super().__init__(
            f"{ref} was changed by another request at the same time; nothing was recorded. "
            "Read it again and retry if the action is still allowed"
        )
        self.ref = ref


class VersionMismatch(DomainError):
    """The caller's If-Match version is not the current one; nothing was recorded."""

    code = "version_mismatch"

    def __init__(self, ref: str, expected: int, current: int) -> None:
        super().__init__(f"{ref} is at version {current}, not {expected}; nothing was recorded")
        self.ref = ref
        self.expected = expected
        self.current = current


class OrderAlreadyShipped(InvalidInput):
    """`not_shipped` is for cancelling before shipment: the order has shipped."""

    code = "order_shipped"

    def __init__(self, order_ref: str, shipped_at: datetime) -> None:
        super().__init__(
            "reason",
            "order_not_shipped",
            f"order {order_ref} shipped at {shipped_at.isoformat()}; a not_shipped dispute "
            "can be opened only before the order ships (choose not_received instead)",
        )
        self.order_ref = order_ref
        self.shipped_at = shipped_at


class OrderChargedBack(DomainError):
    """The card network decides an order with a chargeback: no dispute can be opened."""

    code = "order_charged_back"

    def __init__(self, order_ref: str, reference: str) -> None:
        super().__init__(
            f"order {order_ref} has chargeback {reference}; the card issuer decides it now, "
            "so a dispute can no longer be opened"
        )
        self.order_ref = order_ref
        self.reference = reference


class ChargebackExists(DomainError):
    """A chargeback reference is recorded once per order."""

    code = "chargeback_exists"

    def __init__(self, order_ref: str, reference: str) -> None:
        super().__init__(f"chargeback {reference} is already recorded on order {order_ref}")
        self.order_ref = order_ref
        self.reference = reference
