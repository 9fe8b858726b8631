"""The W3C `traceparent` of the request being served, for code that must not import the
web stack (the application records it on the events a request causes)."""

from __future__ import annotations

from contextvars import ContextVar

current: ContextVar[str | None] = ContextVar("traceparent", default=None)


def current_traceparent() -> str | None:
    """The traceparent of the request being served in this context, if any."""
    return current.get()
