"""Problem details (RFC 9457): the one error shape of both tiers."""

from __future__ import annotations

from pydantic import Field

from .values import Representation

PROBLEM_BASE = "https://disputes.internal/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(Representation):
    field: str = Field(description="dotted path of the bad field, e.g. amount.currency")
    rule: str = Field(description="the rule it breaks, e.g. required, one_of, minimum")
    message: str


class Problem(Representation):
    """RFC 9457 problem details, served as application/problem+json."""

    type: str = Field(examples=[PROBLEM_BASE + "action_not_allowed"])
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="422: every bad field and the rule it breaks"
    )
    allowed_actions: list[str] | None = Field(
        default=None, description="409 action_not_allowed: the actions allowed now"
    )


def problem_type(code: str) -> str:
    return PROBLEM_BASE + code
