"""Contract values to domain values: the one place an HTTP body becomes domain types.

Each action's body model (`shared.contract.ACTION_BODIES`) becomes its command
(`services.dispute.domain.commands`) field by field: the command's fields are named as
the body's, and each field's type says how its value is made (Money from the contract's
money, evidence references checked for https, the domain's enums). A command type with a
field of another type fails at import, so a new action needs no code here.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from datetime import datetime
from enum import StrEnum
from typing import Any, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel

from services.dispute.domain import InvalidInput
from services.dispute.domain.commands import Command, EvidenceItem
from services.dispute.domain.handlers import HANDLERS
from services.dispute.domain.values import EvidenceKind, enum_value
from services.dispute.settings import Settings
from shared import contract
from shared.money import Money, MoneyError


def to_money(value: contract.Money, field: str) -> Money:
    try:
        return Money(value.amount, value.currency)
    except MoneyError as exc:
        raise InvalidInput(f"{field}.{exc.field}", exc.rule, f"{field}.{exc}") from None


def evidence_items(
    evidence: Sequence[contract.EvidenceItem], settings: Settings, field: str = "evidence"
) -> tuple[EvidenceItem, ...]:
    """Evidence is fetched by people and tools later: only https URLs, or http too when
    the service runs in development (a local file server)."""
    allowed = ("https://", "http://") if settings.environment == "development" else ("https://",)
    for i, item in enumerate(evidence):
        if not item.uri.lower().startswith(allowed):
            raise InvalidInput(
                f"{field}[{i}].uri",
                "https",
                f"{field}[{i}].uri must be an https:// URL"
                + (" (or http:// in development)" if len(allowed) > 1 else ""),
            )
    return tuple(EvidenceItem(EvidenceKind(i.kind), i.uri, i.sha256) for i in evidence)


# How one body field becomes one command field: (the body's value, settings) -> value.
Convert = Callable[[Any, Settings], Any]


def _converter(name: str, alias: str, hint: Any) -> Convert:
    optional = get_origin(hint) in (Union, types.UnionType) and type(None) in get_args(hint)
    base = next(a for a in get_args(hint) if a is not type(None)) if optional else hint

    def maybe(convert: Convert) -> Convert:
        return (lambda v, s: None if v is None else convert(v, s)) if optional else convert

    if base is Money:
        return maybe(lambda v, s: to_money(v, name))
    if get_origin(base) is tuple and get_args(base)[0] is EvidenceItem:
        return maybe(lambda v, s: evidence_items(v, s, name))
    if isinstance(base, type) and issubclass(base, StrEnum):
        enum: type[StrEnum] = base
        return maybe(lambda v, s: enum(enum_value(enum, v, alias)))
    if base in (str, datetime):
        return lambda v, s: v
    raise TypeError(f"no conversion from an HTTP body to {name}: {hint}")


def _converters(
    command_type: type[Command], body: type[BaseModel]
) -> Mapping[str, tuple[str, Convert]]:
    hints = get_type_hints(command_type)
    out = {}
    for field in fields(command_type):
        model_field = body.model_fields.get(field.name)
        if model_field is None:
            raise TypeError(f"{body.__name__} has no field {field.name} for {command_type}")
        alias = model_field.alias or field.name
        out[field.name] = (alias, _converter(field.name, alias, hints[field.name]))
    return out


CONVERTERS: Mapping[type[Command], Mapping[str, tuple[str, Convert]]] = {
    command_type: _converters(command_type, contract.ACTION_BODIES[command_type.action])
    for command_type in HANDLERS
}


def command_from_body(
    command_type: type[Command], body: BaseModel | None, settings: Settings
) -> Command:
    """The command an action's (already validated) body asks for; a value the domain
    cannot take (money, an evidence URL) is `InvalidInput`, a 422 naming the field."""
    values = {
        name: convert(getattr(body, name), settings)
        for name, (_, convert) in CONVERTERS[command_type].items()
    }
    return command_type(**values)
