"""Checks a process of the dispute service makes before it starts, so that a common
mistake ends in one line that says what to do, not in a pool time-out's tracebacks."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import psycopg

from shared.ports import refuse

from .settings import Settings


def check_database(settings: Settings, process: str) -> None:
    """With PostgreSQL: stops the process (status 2) with one line when DATABASE_URL
    names a database that does not exist. Any other failure to connect (the server is not
    up yet) is left to the process's own retries."""
    if settings.database_url is None:
        return
    parts = urlsplit(settings.database_url)
    name = unquote(parts.path.lstrip("/"))
    try:
        with psycopg.connect(
            settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1),
            connect_timeout=settings.pool_wait_seconds,
        ):
            return
    except psycopg.OperationalError as exc:
        if f'database "{name}" does not exist' not in str(exc):
            return
    host, port, user = parts.hostname or "127.0.0.1", parts.port or 5432, parts.username
    create = f"createdb -h {host} -p {port}" + (f" -U {unquote(user)}" if user else "")
    refuse(
        f'{process}: database "{name}" does not exist on {host}:{port} (DATABASE_URL); '
        f"create it with: {create} {name}"
    )
