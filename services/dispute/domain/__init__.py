"""The dispute domain: pure Python plus eventsourcing's domain module and transitions.

It imports no web framework and no database driver, and never reads the wall clock.
"""

from . import rules
from .dispute import Dispute, dispute_id
from .errors import (
    ActionNotAllowed,
    ChargebackExists,
    ConcurrentUpdate,
    DisputeAlreadyExists,
    DisputeNotFound,
    DomainError,
    ExtensionRefused,
    InvalidInput,
    NotFound,
    OrderAlreadyShipped,
    OrderChargedBack,
    OrderFactsConflict,
    OrderNotFound,
    ProtectionEnded,
    ReasonNotCovered,
    RoleNotPermitted,
    VersionMismatch,
)
from .order import Order, OrderFacts, order_id
from .policy import Policy, PolicyError, add_business_days
from .recommendation import Recommendation, recommend
from .values import Actor, Context, Role

__all__ = [
    "ActionNotAllowed",
    "Actor",
    "ChargebackExists",
    "ConcurrentUpdate",
    "Context",
    "Dispute",
    "DisputeAlreadyExists",
    "DisputeNotFound",
    "DomainError",
    "ExtensionRefused",
    "InvalidInput",
    "NotFound",
    "Order",
    "OrderAlreadyShipped",
    "OrderChargedBack",
    "OrderFacts",
    "OrderFactsConflict",
    "OrderNotFound",
    "Policy",
    "PolicyError",
    "ProtectionEnded",
    "ReasonNotCovered",
    "Recommendation",
    "Role",
    "RoleNotPermitted",
    "VersionMismatch",
    "add_business_days",
    "dispute_id",
    "order_id",
    "recommend",
    "rules",
]
