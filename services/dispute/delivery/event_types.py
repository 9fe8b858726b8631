"""The event types a subscription may name, and an event's type from its stored topic."""

from __future__ import annotations

from services.dispute.domain import Dispute, Order


def event_types() -> tuple[str, ...]:
    """Every event type a subscription may name (besides "*")."""
    names = {
        name
        for aggregate in (Dispute, Order)
        for name, cls in vars(aggregate).items()
        if isinstance(cls, type) and issubclass(cls, aggregate.Event) and cls.__name__ == name
        and cls is not aggregate.Event and name != "Created"  # the base of the first events
    }  # fmt: skip
    return tuple(sorted(names))


def event_type_of(topic: str) -> str:
    """The event's type from its stored topic, without decoding it."""
    return topic.rsplit(".", 1)[-1]
