"""The dispute service's configuration: one typed object that fails fast on a bad value.

Read from the environment (and a `.env` file if present). PostgreSQL when `DATABASE_URL`
is set, else the embedded default: SQLite in `DISPUTES_DATA_DIR`.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.internal import DEV_SERVICE_TOKEN, is_loopback
from shared.observability import LogSettings

from .domain.policy import Policy, PolicyError

__all__ = ["DEV_SERVICE_TOKEN", "Settings", "load_settings"]


class Settings(LogSettings, BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DISPUTES_", env_file=".env", extra="ignore", frozen=True
    )

    environment: Literal["development", "test", "production"] = "development"
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "DISPUTES_DATABASE_URL")
    )
    data_dir: Path = Path("data")
    # The schema the event store and the service's tables live in (PostgreSQL only).
    db_schema: str = "disputes"
    # Connections: one per worker thread, and a short wait for a free one (libraries.md).
    threads: int = Field(default=16, ge=1, le=256)
    # Server processes (uvicorn workers), each with its threads and its pool: one process
    # runs Python on one core at a time.
    processes: int = Field(default=1, ge=1, le=64)
    # Whether a starting process creates missing tables; with several processes the
    # parent creates them once and the workers do not (concurrent DDL can fail).
    create_tables: bool = True
    pool_wait_seconds: int = Field(default=2, ge=1, le=30)
    lock_timeout_seconds: int = Field(default=5, ge=1, le=60)
    # Callers of this internal service must present this token (the gateway does).
    service_token: SecretStr = SecretStr(DEV_SERVICE_TOKEN)
    host: str = "127.0.0.1"
    port: int = Field(default=8001, ge=1, le=65535)
    # Sandbox: the clock can be moved forward through the API.
    sandbox: bool = False
    # Policy: a JSON file of Policy fields; the defaults of the spec otherwise.
    policy_file: Path | None = None
    snapshot_interval: int = Field(default=50, ge=2)
    # Disputes each server process keeps at their newest version, so a command reads only
    # the events recorded after the kept copy instead of replaying (services.dispute.latest);
    # a few kilobytes each for a case of tens of events. 0 turns it off.
    cached_disputes: int = Field(default=1000, ge=0, le=1_000_000)
    idempotency_ttl_hours: int = Field(default=48, ge=24)
    # A claimed key whose request never finished (the process died) is free again after
    # this lease; a duplicate arriving while the first runs waits this long, then gets 409.
    idempotency_lease_seconds: float = Field(default=30.0, gt=0, le=600)
    idempotency_wait_seconds: float = Field(default=5.0, ge=0, le=60)
    worker_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # `/metrics` of the deadline worker and of the projector, on DISPUTES_HOST (unset or
    # 0: not served; `make run` and compose set 9102 and 9103).
    worker_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    projector_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # The delivery process's `/metrics` (`make run`: 9104; compose's healthcheck asks it).
    delivery_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # Webhooks (services.dispute.delivery): plain http:// and private or loopback
    # destinations are refused unless this is set (development and tests only).
    webhooks_allow_private: bool = False
    # Seconds to wait before each retry of a failed delivery; the last one repeats for as
    # long as the endpoint fails. The default retries within 5 s and keeps going for over
    # 24 h (5 s, 30 s, 2 min, 10 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h, ...).
    webhooks_retry_schedule: tuple[float, ...] = (
        5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800
    )  # fmt: skip
    webhooks_timeout_seconds: float = Field(default=10.0, gt=0, le=10)
    # Deliveries one delivery process makes at once (each to another subscription).
    webhooks_concurrency: int = Field(default=8, ge=1, le=64)
    # A process that claimed a subscription and died lets it go after this lease.
    webhooks_lease_seconds: float = Field(default=30.0, ge=1, le=600)
    webhooks_poll_seconds: float = Field(default=0.2, gt=0, le=60)
    # NATS JetStream (services.dispute.delivery.jetstream): publish every event when set.
    nats_url: str | None = None
    nats_stream: str = Field(default="DISPUTES", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    nats_subject_prefix: str = Field(
        default="disputes.events", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$", max_length=200
    )
    # `/metrics` of the Merkle log's notary (unset or 0: not served; `make run` sets 9105).
    notary_metrics_port: int | None = Field(default=None, ge=0, le=65535)
    # The Merkle log (services.dispute.transparency): its signing key, in Go's note
    # format (PRIVATE+KEY+<name>+<hash>+<base64>); its name is the checkpoints' origin.
    # Required in production; elsewhere a development key is made in DATA_DIR.
    checkpoint_key: SecretStr | None = None
    # Where signed checkpoints are published as files (append-only); default
    # DATA_DIR/checkpoints (/<schema> on PostgreSQL).
    checkpoint_dir: Path | None = None
    # A checkpoint after this many new events, or this long after the first unsigned one.
    checkpoint_every_events: int = Field(default=1000, ge=1, le=1_000_000)
    checkpoint_every_seconds: float = Field(default=10.0, gt=0, le=86_400)
    # Checkpoints are also published to NATS JetStream when DISPUTES_NATS_URL is set.
    checkpoint_nats_stream: str = Field(
        default="DISPUTES_CHECKPOINTS", pattern=r"^[A-Za-z0-9_-]{1,64}$"
    )
    checkpoint_nats_subject: str = Field(
        default="disputes.checkpoints",
        pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$",
        max_length=200,
    )

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg"):
            raise ValueError("DATABASE_URL must be a postgresql:// URL")
        if not parts.hostname or not parts.path.strip("/"):
            raise ValueError("DATABASE_URL must name a host and a database")
        return value

    @field_validator("webhooks_retry_schedule")
    @classmethod
    def _retry_schedule(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(v <= 0 for v in value):
            raise ValueError("DISPUTES_WEBHOOKS_RETRY_SCHEDULE must be positive seconds")
        if value[0] > 10:
            raise ValueError("DISPUTES_WEBHOOKS_RETRY_SCHEDULE must retry within 10 s first")
        if list(value) != sorted(value):
            raise ValueError("DISPUTES_WEBHOOKS_RETRY_SCHEDULE must not shrink")
        return value

    @field_validator("nats_url")
    @classmethod
    def _nats_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if urlsplit(value).scheme not in ("nats", "tls", "ws", "wss"):
            raise ValueError("DISPUTES_NATS_URL must be a nats:// (or tls://) URL")
        return value

    @field_validator("checkpoint_key")
    @classmethod
    def _checkpoint_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        from .transparency.checkpoint import CheckpointError, Signer

        try:
            Signer.decode(value.get_secret_value())
        except CheckpointError as exc:
            raise ValueError(f"DISPUTES_CHECKPOINT_KEY: {exc}") from None
        return value

    @field_validator("db_schema")
    @classmethod
    def _schema_name(cls, value: str) -> str:
        # eventsourcing does not quote the schema in one lookup: keep it lower-case simple.
        if not value.isidentifier() or value.lower() != value:
            raise ValueError("DISPUTES_DB_SCHEMA must be a lower-case identifier")
        return value

    @model_validator(mode="after")
    def _no_insecure_defaults(self) -> Settings:
        dev_token = self.service_token.get_secret_value() == DEV_SERVICE_TOKEN
        if dev_token and not (self.environment == "development" and is_loopback(self.host)):
            # A published token: acceptable only where nothing but this machine can call.
            raise ValueError(
                "DISPUTES_SERVICE_TOKEN must be set unless DISPUTES_ENVIRONMENT=development "
                "and DISPUTES_HOST is a loopback address"
            )
        if self.environment == "production" and self.sandbox:
            raise ValueError("DISPUTES_SANDBOX must not be enabled in production")
        if self.environment == "production" and self.webhooks_allow_private:
            raise ValueError("DISPUTES_WEBHOOKS_ALLOW_PRIVATE must not be set in production")
        if self.environment == "production" and self.checkpoint_key is None:
            raise ValueError("DISPUTES_CHECKPOINT_KEY must be set in production")
        if len(self.service_token.get_secret_value()) < 16:
            raise ValueError("DISPUTES_SERVICE_TOKEN must be at least 16 characters")
        _ = self.policy  # fail fast on a bad policy file
        return self

    @property
    def checkpoints_path(self) -> Path:
        """DISPUTES_CHECKPOINT_DIR, else DATA_DIR/checkpoints (per schema on PostgreSQL:
        each schema is a log of its own)."""
        if self.checkpoint_dir is not None:
            return self.checkpoint_dir
        base = self.data_dir / "checkpoints"
        return base / self.db_schema if self.uses_postgres else base

    @property
    def uses_postgres(self) -> bool:
        return self.database_url is not None

    @cached_property
    def policy(self) -> Policy:
        if self.policy_file is None:
            return Policy()
        try:
            return Policy.from_dict(json.loads(self.policy_file.read_text()))
        except (OSError, ValueError, TypeError, PolicyError) as exc:
            raise ValueError(f"DISPUTES_POLICY_FILE {self.policy_file}: {exc}") from exc

    def persistence_env(self) -> dict[str, str]:
        """The eventsourcing environment for this configuration."""
        if self.database_url is None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "services.dispute.infrastructure.sqlite",
                "SQLITE_DBNAME": str(self.data_dir / "disputes.db"),
                "SQLITE_LOCK_TIMEOUT": str(self.lock_timeout_seconds),
                "CREATE_TABLE": "y" if self.create_tables else "n",
            }
        parts = urlsplit(self.database_url)
        return {
            "PERSISTENCE_MODULE": "services.dispute.infrastructure.postgres",
            "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")),
            "POSTGRES_HOST": parts.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(parts.port or 5432),
            "POSTGRES_USER": unquote(parts.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(parts.password or ""),
            "POSTGRES_SCHEMA": self.db_schema,
            "POSTGRES_POOL_SIZE": str(self.threads),
            # A request with an Idempotency-Key holds a second connection, its claim's
            # (infrastructure/postgres.py): opened only when needed, closed when idle.
            "POSTGRES_MAX_OVERFLOW": str(self.threads),
            "POSTGRES_CONNECT_TIMEOUT": str(self.pool_wait_seconds),
            "POSTGRES_LOCK_TIMEOUT": str(self.lock_timeout_seconds),
            "CREATE_TABLE": "y" if self.create_tables else "n",
        }


def load_settings() -> Settings:
    """Reads the environment; raises pydantic's ValidationError naming each bad variable."""
    return Settings()
