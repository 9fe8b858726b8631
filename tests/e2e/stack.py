"""The end-to-end tests' stack: `services.stack`'s real processes, with the sandbox clock
on (tests move time forward through the API), the deadline worker polling every 0.2 s and
a rate limit no test reaches."""

from __future__ import annotations

from pathlib import Path

from services.stack import Stack

JWT_SECRET = "e2e-jwt-secret-0123456789-abcdefghijkl"
SERVICE_TOKEN = "e2e-internal-service-token-0123"
E2E_ENV = {
    "DISPUTES_SANDBOX": "1",
    "DISPUTES_WORKER_POLL_SECONDS": "0.2",
    "DISPUTES_RATE_LIMIT": "1000/second",
    "DISPUTES_ROLE_RATE_LIMITS": '{"service": "1000/second"}',
    "DISPUTES_UNAUTHENTICATED_RATE_LIMIT": "1000/second",
    # PostgreSQL's 100 connections are shared by everyone's test runs: small pools.
    "DISPUTES_THREADS": "4",
}

__all__ = ["SERVICE_TOKEN", "Stack", "e2e_stack"]


def e2e_stack(database_url: str, schema: str, logs: Path, **extra_env: str) -> Stack:
    return Stack(
        database_url=database_url,
        schema=schema,
        logs=logs,
        service_token=SERVICE_TOKEN,
        jwt_secret=JWT_SECRET,
        extra_env={**E2E_ENV, **extra_env},
    )
