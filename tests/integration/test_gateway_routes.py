"""The gateway's route table comes from the contract and the permission table: its path
and query parameters are the service's (no limit restated), every route has its roles in
the permission table, and the roles a summary names are the table's."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

import services.gateway.routes as gateway_routes
from services.dispute.api.app import create_app as create_service_app
from services.dispute.settings import Settings
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared import contract, permissions

ROUTES_DIR = Path(gateway_routes.__file__).parent
# Where the public document still differs from what the service enforces, and why.
KNOWN_DIFFERENCES = {
    # The service checks the order id as an Id; the published document says any string.
    ("POST", "/v1/orders/{order_id}/chargebacks", "path", "order_id"),
}


def gateway_document() -> dict[str, Any]:
    settings = GatewaySettings(
        _env_file=None,  # type: ignore[call-arg]
        environment="test",
        jwt_secret=SecretStr("gateway-routes-test-secret-0123456789"),
        service_token=SecretStr("gateway-routes-service-token"),
        upstream_url="http://127.0.0.1:1",
    )
    document: dict[str, Any] = create_app(settings).openapi()
    return document


@pytest.fixture(scope="module")
def gateway() -> dict[str, Any]:
    return gateway_document()


@pytest.fixture(scope="module")
def service() -> dict[str, Any]:
    document: dict[str, Any] = create_service_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]
    return document


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
        if path.startswith("/v1/")
    }


def schema_rules(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter's schema without its words (title, description) and never nullable:
    what a value must be."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        values = [o for o in options if o.get("type") != "null"]
        if len(values) == 1:
            schema = {**values[0], **{k: v for k, v in schema.items() if k != "anyOf"}}
    return {k: v for k, v in schema.items() if k not in {"title", "description"}}


def parameters(operation: dict[str, Any]) -> dict[tuple[str, str], Any]:
    return {
        (p["in"], p["name"]): (p.get("required", False), schema_rules(p["schema"]))
        for p in operation.get("parameters", [])
        if p["in"] in {"path", "query"}
    }


def test_every_path_and_query_parameter_is_the_services(
    gateway: dict[str, Any], service: dict[str, Any]
) -> None:
    published, served = operations(gateway), operations(service)
    assert set(published) == set(served)
    differences = set()
    for key, operation in published.items():
        ours, theirs = parameters(operation), parameters(served[key])
        assert set(ours) == set(theirs), key
        differences |= {(*key, *name) for name in ours if ours[name] != theirs[name]}
    assert differences == KNOWN_DIFFERENCES


def test_every_public_route_has_its_roles_in_the_permission_table(
    gateway: dict[str, Any],
) -> None:
    for method, path in operations(gateway):
        assert permissions.route_roles(method, path), (method, path)


def named_roles(text: str) -> set[str] | None:
    """The roles a summary or description names in parentheses, if it names any."""
    for group in re.findall(r"\(([a-z, ]+)\)", text):
        names = {name.strip() for name in group.split(",")}
        if group == "any role":
            return set(permissions.EVERYONE)
        if names <= permissions.CALLER_ROLES:
            return names
    return None


def test_the_roles_a_summary_names_are_the_permission_tables(gateway: dict[str, Any]) -> None:
    named = 0
    for (method, path), operation in operations(gateway).items():
        text = operation.get("summary", "") + " " + operation.get("description", "")
        roles = named_roles(text)
        if roles is not None:
            named += 1
            assert roles == set(permissions.route_roles(method, path)), (method, path)
    assert named >= len(contract.ACTION_BODIES) + 10


LIMIT_KEYWORDS = {"ge", "gt", "le", "lt", "min_length", "max_length", "pattern"}


@pytest.mark.parametrize("path", sorted(ROUTES_DIR.glob("*.py")), ids=lambda p: p.name)
def test_the_gateways_routes_restate_no_limit(path: Path) -> None:
    """Limits come from the contract's constants and parameter types, never a literal
    (but "not empty": a minimum of 0 or 1)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    restated = [
        f"{keyword.arg}={ast.unparse(keyword.value)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        for keyword in node.keywords
        if keyword.arg in LIMIT_KEYWORDS
        and not isinstance(keyword.value, ast.Attribute)
        and ast.unparse(keyword.value) not in {"0", "1"}
    ]
    assert restated == []


def test_the_limits_the_descriptions_quote_are_the_services() -> None:
    from services.dispute.api import dashboard_routes
    from services.dispute.delivery import store

    assert contract.DAILY_DAYS_MAX == dashboard_routes.MAX_DAYS
    assert contract.WEBHOOKS_PER_SERVICE_MAX == store.MAX_SUBSCRIPTIONS_PER_OWNER
