"""Actions on the application as the service's HTTP layer takes them: the body (JSON
data) validated by the contract's model, made into its command by the service's own
adapter (services.dispute.api.inputs), and handed to `DisputeApplication.handle`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

from services.dispute.api.inputs import command_from_body
from services.dispute.application import DisputeApplication, Respond
from services.dispute.domain import Actor, Dispute
from services.dispute.domain.commands import Command
from services.dispute.domain.handlers import COMMANDS
from services.dispute.settings import Settings
from shared import contract

SETTINGS = Settings(  # type: ignore[call-arg]
    _env_file=None,
    environment="test",
    service_token="test-internal-token-0123456789",
    database_url=None,
    data_dir=Path("unused"),
)


def command(action: str, args: Mapping[str, Any] | None = None, currency: str = "USD") -> Command:
    """The command of `action` with this body; an amount given as an integer is in
    `currency`."""
    data = dict(args or {})
    if isinstance(data.get("amount"), int):
        data["amount"] = {"amount": data["amount"], "currency": currency}
    model = contract.ACTION_BODIES[action]
    body = model.model_validate(data) if model.model_fields or data else None
    return command_from_body(COMMANDS[action], body, SETTINGS)


def act(
    app: DisputeApplication,
    actor: Actor,
    correlation_id: str,
    ref: str | UUID,
    action: str,
    args: Mapping[str, Any] | None = None,
    *,
    expected_version: int | None = None,
    respond: Respond | None = None,
) -> Dispute:
    """Takes `action` on the dispute `ref` as `actor` would over HTTP (an integer amount
    is in the dispute's currency)."""
    currency = "USD"
    if args and isinstance(args.get("amount"), int):
        currency = app.get_dispute(actor, ref).currency
    return app.handle(
        actor,
        correlation_id,
        str(ref),
        command(action, args, currency),
        expected_version=expected_version,
        respond=respond,
    )
