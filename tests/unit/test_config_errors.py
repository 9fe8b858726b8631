"""A bad setting is named by its environment variable, with the rule it broke."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.dispute.settings import Settings
from services.gateway.settings import GatewaySettings
from shared.config_errors import describe


def refusal(monkeypatch: pytest.MonkeyPatch, settings: type, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as refused:
        settings(_env_file=None)
    return describe(refused.value)


def test_a_bad_value_names_the_variable_and_the_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    said = refusal(monkeypatch, Settings, DISPUTES_THREADS="abc")
    assert said == (
        "DISPUTES_THREADS='abc': "
        "Input should be a valid integer, unable to parse string as an integer"
    )


def test_a_secret_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    said = refusal(monkeypatch, GatewaySettings, DISPUTES_ENVIRONMENT="production",
                   DISPUTES_JWT_SECRET="short-secret-value")  # fmt: skip
    assert "short-secret-value" not in said
    assert "DISPUTES_JWT_SECRET" in said
    assert "pydantic" not in said and "input_value" not in said
