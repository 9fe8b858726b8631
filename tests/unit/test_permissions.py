"""The one permission table (shared/permissions.py): the transition table's role guards
come from it, every trigger and route has its roles there, and the gateway reads it
without importing the dispute service."""

from __future__ import annotations

import subprocess
import sys

from services.dispute.domain import guards, rules
from shared import permissions
from shared.contract import ACTION_BODIES


def test_every_trigger_of_the_transition_table_has_its_roles_and_no_other_is_listed() -> None:
    assert set(permissions.ACTIONS) == set(rules.TRIGGERS)


def test_the_rows_carry_no_role_guard_of_their_own() -> None:
    for row in rules._TABLE:
        assert not [c for c in row["conditions"] if c.startswith("by_")], row


def test_each_rows_role_guard_is_the_permission_tables() -> None:
    for row in rules.TRANSITIONS:
        guard = row["conditions"][0]
        assert rules.ROLE_GUARDS[guard] == permissions.ACTIONS[row["trigger"]], row
        for role in ("buyer", "seller", "agent", "service", "auditor", "system"):
            assert rules.role_may_row(row, role) == (role in permissions.ACTIONS[row["trigger"]])


def test_a_change_of_the_table_is_a_change_of_who_may_pull_the_trigger() -> None:
    # The guard is evaluated from the table each time (no copy): who the table names.
    probe = guards.Probe(facts=guards._NO_FACTS, role="seller")
    assert probe.by_seller() and not probe.by_buyer() and probe.by_buyer_or_seller()
    assert guards.Probe(facts=guards._NO_FACTS, role="agent").by_agent_or_buyer_or_seller()


def test_time_outs_are_the_deadline_workers_only_and_it_calls_no_route() -> None:
    for trigger in rules.TIMEOUT_TRIGGERS:
        assert permissions.ACTIONS[trigger] == {permissions.SYSTEM}
    assert all(permissions.SYSTEM not in roles for roles in permissions.ROUTES.values())


def test_every_action_of_the_contract_has_a_route_and_the_auditor_writes_nothing() -> None:
    for action in ACTION_BODIES:
        assert permissions.route_roles("POST", permissions.action_path(action)), action
    for (method, template), _ in permissions.ROUTES.items():
        if method != "GET":
            assert "auditor" not in permissions.route_roles(method, template), template


def test_routes_are_found_by_template_or_by_a_path_a_template_matches() -> None:
    assert permissions.route_roles("GET", "/v1/stats/{figure}") == {"agent", "auditor", "service"}
    assert permissions.route_roles("GET", "/v1/stats/sellers") == {"agent", "auditor", "service"}
    assert permissions.route_roles("HEAD", "/v1/state-machine") == permissions.EVERYONE
    assert permissions.route_roles("POST", "/v1/disputes/{dispute_id}/accept") == {"seller"}
    # The exact template wins over the catch-all of unknown actions.
    assert permissions.route_roles("GET", "/v1/disputes/{dispute_id}/events") == (
        permissions.EVERYONE
    )
    assert permissions.route_roles("DELETE", "/v1/orders/{order_id}") == frozenset()
    assert permissions.route_roles("GET", "/v1/nothing") == frozenset()


def test_a_party_sees_only_its_own() -> None:
    assert permissions.may_see("buyer", "b1", "b1", "s1")
    assert not permissions.may_see("buyer", "b2", "b1", "s1")
    assert permissions.may_see("seller", "s1", "b1", "s1")
    assert not permissions.may_see("seller", "b1", "b1", "s1")
    for role in ("agent", "service", "auditor", "system"):
        assert permissions.may_see(role, "x", "b1", "s1")
    assert not permissions.may_see("intruder", "b1", "b1", "b1")


def test_the_gateway_imports_nothing_from_the_dispute_service() -> None:
    code = (
        "import sys, services.gateway.app, services.gateway.__main__, services.gateway.tokens;"
        "print(sorted(m for m in sys.modules if m.startswith('services.dispute')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
