"""Role-level authorization: which roles may call a public route at all.

Dispute actions read the transition table (`rules.role_may`), the single source of
truth; the few routes that are not actions are listed once below. Whether a caller may
touch a particular dispute or order is the dispute service's decision: it holds the
facts (a party sees only its own, else 404).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from services.dispute.domain.rules import ACTION_TRIGGERS, action_name, role_may, trigger_for

from .auth import ROLES

ANY_ROLE: frozenset[str] = ROLES
AUDITOR = "auditor"  # read-only: never allowed a write, whatever a table says

# (method, route path) -> roles, for the routes that are not dispute actions.
ROUTE_ROLES: Mapping[tuple[str, str], frozenset[str]] = MappingProxyType(
    {
        ("PUT", "/v1/orders/{order_id}"): frozenset({"service"}),
        ("POST", "/v1/orders/{order_id}/protection-extensions"): frozenset({"seller"}),
        ("GET", "/v1/orders/{order_id}"): ANY_ROLE,
        ("POST", "/v1/disputes"): frozenset({"buyer"}),
        ("GET", "/v1/disputes"): ANY_ROLE,
        ("GET", "/v1/disputes/{dispute_id}"): ANY_ROLE,
        ("GET", "/v1/disputes/{dispute_id}/events"): ANY_ROLE,
        ("GET", "/v1/disputes/{dispute_id}/verification"): ANY_ROLE,
        ("GET", "/v1/events"): frozenset({"service", "agent", "auditor"}),
        ("GET", "/v1/state-machine"): ANY_ROLE,
        ("GET", "/v1/stats/{figure}"): frozenset({"agent", "auditor", "service"}),
        ("POST", "/v1/sandbox/clock"): frozenset({"agent", "service"}),
    }
)

ACTIONS: tuple[str, ...] = tuple(action_name(t) for t in ACTION_TRIGGERS)


def action_roles(action: str) -> frozenset[str]:
    """The roles the transition table lets take `action` in some state."""
    trigger = trigger_for(action)
    if trigger is None:
        return frozenset()
    return frozenset(role for role in ROLES if role_may(trigger, role))


def action_path(action: str) -> str:
    return f"/v1/disputes/{{dispute_id}}/{action}"


def route_roles(method: str, path: str) -> frozenset[str]:
    """Roles allowed on a route; writes are never allowed to an auditor."""
    roles = ROUTE_ROLES.get((method, path))
    if roles is None:
        prefix = "/v1/disputes/{dispute_id}/"
        action = path.removeprefix(prefix) if path.startswith(prefix) else ""
        roles = action_roles(action) if method == "POST" else frozenset()
    if method not in ("GET", "HEAD"):
        roles = roles - {AUDITOR}
    return roles
