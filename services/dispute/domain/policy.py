"""Policy: the durations and thresholds the rules use. Configuration, not code.

Each dispute records the values it was opened under (and each order the protection
values it was registered under), so a later policy change never rewrites history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .values import PaymentMethod, Reason

MAX_SELLER_RESPONSE_DAYS = 15  # seed 003: 5 to 15 days depending on the category


class PolicyError(ValueError):
    """A policy value that makes no sense; raised at start-up, never mid-request."""


@dataclass(frozen=True)
class Policy:
    version: str = "2026-11-01"
    # Orders and the protection window (seeds 001, 004)
    protection_after_delivery_days: int = 15
    delivery_deadline_days: int = 60
    protection_cap_days: int = 90
    # The seller's first answer (seeds 001-003)
    seller_response_days: int = 5
    seller_response_days_by_reason: Mapping[str, int] = field(default_factory=dict)
    # Each turn of the negotiation
    offer_response_days: int = 5
    # Review
    info_request_days: int = 3
    ruling_sla_business_days: int = 7  # for a review's ruling and an appeal's alike
    # Appeals: the ruling takes effect after this many days (0: at once, no appeals)
    appeal_window_days: int = 3
    # Returns
    return_window_days: int = 10
    return_confirmation_days: int = 5
    return_address: str = "Marketplace local returns centre"
    # Refund payout expectations, in business days (seed 003)
    payout_business_days: Mapping[str, int] = field(
        default_factory=lambda: {"card": 15, "wallet": 3, "other": 15}
    )
    # Recommendation thresholds, in major units of the order's currency (seed 003)
    return_shipping_estimate: int = 30
    contested_return_threshold: int = 50

    def __post_init__(self) -> None:
        for name in (
            "protection_after_delivery_days",
            "delivery_deadline_days",
            "protection_cap_days",
            "seller_response_days",
            "offer_response_days",
            "info_request_days",
            "ruling_sla_business_days",
            "return_window_days",
            "return_confirmation_days",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise PolicyError(f"policy {name} must be a whole number of days >= 1")
        if (
            not isinstance(self.appeal_window_days, int)
            or isinstance(self.appeal_window_days, bool)
            or self.appeal_window_days < 0
        ):
            raise PolicyError("policy appeal_window_days must be a whole number of days >= 0")
        if self.delivery_deadline_days > self.protection_cap_days:
            raise PolicyError("policy delivery_deadline_days must not exceed protection_cap_days")
        if self.seller_response_days > MAX_SELLER_RESPONSE_DAYS:
            raise PolicyError(f"policy seller_response_days must be <= {MAX_SELLER_RESPONSE_DAYS}")
        for reason, days in self.seller_response_days_by_reason.items():
            if reason not in Reason.__members__.values():
                raise PolicyError(f"policy override for unknown reason {reason!r}")
            if not isinstance(days, int) or not 1 <= days <= MAX_SELLER_RESPONSE_DAYS:
                raise PolicyError(
                    f"policy seller response override for {reason} must be 1 to "
                    f"{MAX_SELLER_RESPONSE_DAYS} days"
                )
        for method in PaymentMethod:
            payout_days = self.payout_business_days.get(method.value)
            if not isinstance(payout_days, int) or payout_days < 1:
                raise PolicyError(f"policy payout_business_days needs a value for {method}")
        for name in ("return_shipping_estimate", "contested_return_threshold"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise PolicyError(f"policy {name} must be a whole number >= 0")
        if not self.return_address.strip():
            raise PolicyError("policy return_address must not be empty")

    def seller_response_days_for(self, reason: str) -> int:
        return self.seller_response_days_by_reason.get(reason, self.seller_response_days)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seller_response_days_by_reason"] = dict(self.seller_response_days_by_reason)
        data["payout_business_days"] = dict(self.payout_business_days)
        return data

    @classmethod
    def recorded(cls, data: Mapping[str, Any]) -> Policy:
        """The policy a dispute was opened under, as its Opened event recorded it. One
        recorded before appeals existed has no appeal window: its rulings took effect at
        once, and still do."""
        known = set(cls.__dataclass_fields__)
        return cls(**{"appeal_window_days": 0, **{k: v for k, v in data.items() if k in known}})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise PolicyError(f"unknown policy keys: {', '.join(sorted(unknown))}")
        return cls(**data)


def add_business_days(start: datetime, days: int) -> datetime:
    """`days` weekdays (Monday to Friday) after `start`, at the same time of day."""
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current


def days_after(start: datetime, days: int) -> datetime:
    return start + timedelta(days=days)
