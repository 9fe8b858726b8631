"""The gateway's configuration: one typed object that fails fast on a bad value.

Read from the environment (prefix `DISPUTES_`, and a `.env` file if present). Outside
development every secret must be given: the labelled development defaults below are
refused there.
"""

from __future__ import annotations

from typing import Literal

import limits
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.internal import DEV_SERVICE_TOKEN
from shared.observability import LogSettings
from shared.permissions import CALLER_ROLES

# Development only: lets `make run` and the token CLI work with no setup. Refused in
# "test" and "production", where DISPUTES_JWT_SECRET must be set.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-0123456789"
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash


class GatewaySettings(LogSettings, BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DISPUTES_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Literal["development", "test", "production"] = "development"

    # Authentication: HS256 only; issuer and audience are checked when configured.
    jwt_secret: SecretStr = SecretStr("")  # empty: the development default, or an error
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: int = Field(default=0, ge=0, le=300)
    # The longest a token may live: one whose exp is further ahead is refused.
    jwt_max_ttl_seconds: int = Field(default=24 * 3600, ge=60, le=366 * 24 * 3600)

    # Where the dispute service listens, and the token that proves we are the gateway.
    upstream_url: str = "http://127.0.0.1:8001"
    service_token: SecretStr = SecretStr(DEV_SERVICE_TOKEN)
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=60)
    # Reading the answer: generous enough for a sandbox clock move that fires deadlines.
    upstream_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    upstream_max_connections: int = Field(default=100, ge=1, le=10_000)

    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(default=8000, ge=1, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)
    # The whole body must arrive within this (408 after): a client that sends a
    # Content-Length and then trickles or stops holds nothing for longer.
    body_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Every header together (431 above), and the Authorization header alone (401 above).
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=1024 * 1024)
    max_token_bytes: int = Field(default=4096, ge=256, le=64 * 1024)

    # Per principal (role and sub), e.g. "20/second" or "20/second;600/minute"; a role
    # listed in role_rate_limits ({"service": "1000/second"}, JSON) has its own. The
    # `service` role is an orders service registering every order: 20/s is far too low.
    rate_limit: str = "20/second"
    role_rate_limits: dict[str, str] = Field(default_factory=lambda: {"service": "1000/second"})
    # Requests without valid credentials, per client address.
    unauthenticated_rate_limit: str = "20/second;600/minute"
    # Set to share the count between gateway replicas (redis://host:6379/0).
    redis_url: str | None = None

    @field_validator("jwt_issuer", "jwt_audience", "redis_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("upstream_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("DISPUTES_UPSTREAM_URL must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("rate_limit", "unauthenticated_rate_limit")
    @classmethod
    def _rate_limit(cls, value: str, info: ValidationInfo) -> str:
        try:
            limits.parse_many(value)
        except ValueError as exc:
            name = f"DISPUTES_{(info.field_name or '').upper()}"
            raise ValueError(f"{name} {value!r}: {exc}") from exc
        return value

    @field_validator("role_rate_limits")
    @classmethod
    def _role_rate_limits(cls, value: dict[str, str]) -> dict[str, str]:
        for role, limit in value.items():
            if role not in CALLER_ROLES:
                raise ValueError(f"DISPUTES_ROLE_RATE_LIMITS: {role!r} is not a role")
            try:
                limits.parse_many(limit)
            except ValueError as exc:
                raise ValueError(f"DISPUTES_ROLE_RATE_LIMITS {role}: {limit!r}: {exc}") from exc
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://")):
            raise ValueError("DISPUTES_REDIS_URL must be a redis:// or rediss:// URL")
        return value

    @model_validator(mode="after")
    def _no_insecure_defaults(self) -> GatewaySettings:
        if not self.jwt_secret.get_secret_value():
            if self.environment != "development":
                raise ValueError(f"DISPUTES_JWT_SECRET must be set in {self.environment}")
            object.__setattr__(self, "jwt_secret", SecretStr(DEV_JWT_SECRET))
        secret = self.jwt_key
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"DISPUTES_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        if self.environment != "development" and secret == DEV_JWT_SECRET:
            raise ValueError("DISPUTES_JWT_SECRET must not be the development default")
        if (
            self.environment != "development"
            and self.service_token.get_secret_value() == DEV_SERVICE_TOKEN
        ):
            raise ValueError(f"DISPUTES_SERVICE_TOKEN must be set in {self.environment}")
        if len(self.service_token.get_secret_value()) < 16:
            raise ValueError("DISPUTES_SERVICE_TOKEN must be at least 16 characters")
        return self

    @property
    def jwt_key(self) -> str:
        return self.jwt_secret.get_secret_value()

    @property
    def rate_limits(self) -> list[limits.RateLimitItem]:
        return limits.parse_many(self.rate_limit)

    def role_limits(self, role: str) -> list[limits.RateLimitItem]:
        return limits.parse_many(self.role_rate_limits.get(role, self.rate_limit))

    @property
    def unauthenticated_limits(self) -> list[limits.RateLimitItem]:
        return limits.parse_many(self.unauthenticated_rate_limit)


def load_settings() -> GatewaySettings:
    """Reads the environment; raises pydantic's ValidationError naming each bad variable."""
    return GatewaySettings()
