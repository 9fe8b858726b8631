"""Who may do what: the one permission table, beside the transition table.

The transition table (`services/dispute/domain/rules.py`) says what may happen in which
state; this table says who may do it. Everything that decides on a role reads it:

- the transition table's role guards (`by_seller`...), made from `ACTIONS`;
- the dispute service, which refuses a route a role may not call (`may_call`) and shows
  a party only its own disputes and orders (`sees_everything`);
- the gateway, which refuses early from the same table, on the path it forwards.

Plain data and pure functions: the domain, the service and the gateway all import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

BUYER, SELLER, AGENT, SERVICE, AUDITOR = "buyer", "seller", "agent", "service", "auditor"
SYSTEM = "system"  # the deadline worker; never a caller over HTTP

CALLER_ROLES: frozenset[str] = frozenset({BUYER, SELLER, AGENT, SERVICE, AUDITOR})
EVERYONE = CALLER_ROLES
PARTIES: frozenset[str] = frozenset({BUYER, SELLER})

# Who may pull each trigger of the transition table (the state decides when).
ACTIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "accept": frozenset({SELLER}),
        "reject": frozenset({SELLER}),
        "offer": frozenset({SELLER}),
        "accept_offer": frozenset({BUYER}),
        "revise": frozenset({BUYER}),
        "escalate": frozenset({BUYER}),
        "withdraw": frozenset({BUYER}),
        "request_info": frozenset({AGENT}),
        "rule": frozenset({AGENT}),
        "appeal": frozenset({BUYER, SELLER}),  # the party the ruling went against: the state's
        "ship_return": frozenset({BUYER}),
        "return_delivered": frozenset({SERVICE}),
        "confirm_return": frozenset({SELLER}),
        "contest_return": frozenset({SELLER}),
        "refund_paid": frozenset({SERVICE}),
        "refund_failed": frozenset({SERVICE}),
        "evidence": frozenset({BUYER, SELLER}),
        "messages": frozenset({BUYER, SELLER, AGENT}),
        "extend_deadline": frozenset({AGENT}),
        # Reported on the order (POST /v1/orders/{order_id}/chargebacks), no dispute action.
        "chargeback": frozenset({SERVICE}),
        # Time-outs: only the deadline worker.
        "seller_response_timeout": frozenset({SYSTEM}),
        "buyer_response_timeout": frozenset({SYSTEM}),
        "info_request_timeout": frozenset({SYSTEM}),
        "return_shipment_timeout": frozenset({SYSTEM}),
        "return_confirmation_timeout": frozenset({SYSTEM}),
        "appeal_window_timeout": frozenset({SYSTEM}),
    }
)
# Triggers reported on the order rather than taken on the dispute: no action route.
REPORTED_ON_ORDER: frozenset[str] = frozenset({"chargeback"})

# Who may give the commands that are not triggers of the transition table.
COMMANDS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "put_order": frozenset({SERVICE}),  # register an order, or add shipping facts
        "extend_protection": frozenset({SELLER}),
        "report_chargeback": frozenset({SERVICE}),  # the payments service
        "open_dispute": frozenset({BUYER}),
        "read_feed": frozenset({SERVICE, AGENT, AUDITOR}),
        "read_stats": frozenset({AGENT, AUDITOR, SERVICE}),
        "move_sandbox_clock": frozenset({AGENT, SERVICE}),
        # subscribe to webhooks, and manage one's own (each service sees only its own)
        "manage_webhooks": frozenset({SERVICE}),
        # The Merkle log's checkpoints and proofs (services.dispute.transparency).
        "read_merkle_log": frozenset({AGENT, AUDITOR}),
    }
)

ACTION_ROUTE_PREFIX = "/v1/disputes/{dispute_id}/"


def action_name(trigger: str) -> str:
    """The API's name for a trigger: `accept_offer` is `accept-offer`."""
    return trigger.replace("_", "-")


def action_path(action: str) -> str:
    return ACTION_ROUTE_PREFIX + action


# Who may call each public route at all (method, path template). The dispute service
# checks it on every authenticated route; a route missing here is refused to everyone.
# Writes are never open to the auditor.
ROUTES: Mapping[tuple[str, str], frozenset[str]] = MappingProxyType(
    {
        ("PUT", "/v1/orders/{order_id}"): COMMANDS["put_order"],
        ("POST", "/v1/orders/{order_id}/protection-extensions"): COMMANDS["extend_protection"],
        ("POST", "/v1/orders/{order_id}/chargebacks"): COMMANDS["report_chargeback"],
        ("GET", "/v1/orders/{order_id}"): EVERYONE,
        ("POST", "/v1/disputes"): COMMANDS["open_dispute"],
        ("GET", "/v1/disputes"): EVERYONE,
        ("GET", "/v1/disputes/{dispute_id}"): EVERYONE,
        ("GET", "/v1/disputes/{dispute_id}/events"): EVERYONE,
        ("GET", "/v1/disputes/{dispute_id}/verification"): EVERYONE,
        ("GET", "/v1/events"): COMMANDS["read_feed"],
        ("GET", "/v1/state-machine"): EVERYONE,
        ("GET", "/v1/stats/{figure}"): COMMANDS["read_stats"],
        ("POST", "/v1/sandbox/clock"): COMMANDS["move_sandbox_clock"],
        ("GET", "/v1/sandbox/clock"): EVERYONE,
        ("POST", "/v1/webhooks"): COMMANDS["manage_webhooks"],
        ("GET", "/v1/webhooks"): COMMANDS["manage_webhooks"],
        ("GET", "/v1/webhooks/{webhook_id}"): COMMANDS["manage_webhooks"],
        ("DELETE", "/v1/webhooks/{webhook_id}"): COMMANDS["manage_webhooks"],
        ("GET", "/v1/webhooks/{webhook_id}/deliveries"): COMMANDS["manage_webhooks"],
        ("POST", "/v1/webhooks/{webhook_id}/replay"): COMMANDS["manage_webhooks"],
        ("GET", "/v1/audit/checkpoint"): COMMANDS["read_merkle_log"],
        ("GET", "/v1/audit/inclusion"): COMMANDS["read_merkle_log"],
        ("GET", "/v1/audit/consistency"): COMMANDS["read_merkle_log"],
        # An action that does not exist: everyone is told so (404 unknown_action).
        ("POST", ACTION_ROUTE_PREFIX + "{action}"): EVERYONE,
        **{
            ("POST", action_path(action_name(trigger))): roles & CALLER_ROLES
            for trigger, roles in ACTIONS.items()
            if roles & CALLER_ROLES and trigger not in REPORTED_ON_ORDER
        },
    }
)

# What a caller may see: these roles see every dispute and order; a party (buyer,
# seller) sees only those it is the buyer or seller of, and to it the others do not
# exist (404, the same answer as for a missing one).
SEES_EVERYTHING: frozenset[str] = frozenset({AGENT, SERVICE, AUDITOR, SYSTEM})
# Who sees the policy's recommendation on a dispute.
SEES_RECOMMENDATION: frozenset[str] = frozenset({AGENT, AUDITOR})


def _template_match(template: str, path: str) -> bool:
    want, have = template.split("/"), path.split("/")
    return len(want) == len(have) and all(
        w == h or (w.startswith("{") and w.endswith("}")) for w, h in zip(want, have, strict=True)
    )


def route_roles(method: str, path: str) -> frozenset[str]:
    """The roles that may call `method` on the route `path`: a template of the table, or a
    path one of its templates matches (`/v1/stats/sellers`); none if unknown (refused).
    HEAD is GET's; writes are never the auditor's."""
    method = "GET" if method == "HEAD" else method
    roles = ROUTES.get((method, path))
    if roles is None:
        matching = [
            (template.count("{"), roles)
            for (m, template), roles in ROUTES.items()
            if m == method and _template_match(template, path)
        ]
        roles = min(matching, key=lambda found: found[0])[1] if matching else frozenset()
    return roles if method == "GET" else roles - {AUDITOR}


def may_call(role: str, method: str, path: str) -> bool:
    return role in route_roles(method, path)


def action_roles(trigger: str) -> frozenset[str]:
    """Who may pull a trigger (in some state); empty for an unknown one."""
    return ACTIONS.get(trigger, frozenset())


def may_command(role: str, command: str) -> bool:
    return role in COMMANDS.get(command, frozenset())


def may_see(role: str, principal: str, buyer_id: str, seller_id: str) -> bool:
    """Whether a caller may see a dispute or order between these parties."""
    if role == BUYER:
        return principal == buyer_id
    if role == SELLER:
        return principal == seller_id
    return role in SEES_EVERYTHING
