"""What the plain CRUD peer and the bare-ASGI floor share: their tables, their one
transaction, and the bearer-token check.

The yardstick of issue 16: the service a team would otherwise write for the same command
(`POST /v1/disputes/{id}/messages`), a row per dispute and a history row per change. One
transaction per command, three statements:

    SELECT buyer_id, seller_id, state FROM disputes WHERE id = %s FOR UPDATE
    UPDATE disputes SET version = version + 1, updated_at = now() WHERE id = %s RETURNING ...
    INSERT INTO dispute_history (dispute_id, version, kind, actor_role, actor_id, body, at)

The token is the gateway's (HS256, `sub`, `role`, `exp` required; the issuer and audience
when configured), checked in-process with PyJWT. Not part of the product: nothing in
`services/` imports it.
"""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
import psycopg
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

MESSAGE_ROLES = frozenset({"buyer", "seller", "agent"})  # who may post a message
MAX_BODY_CHARS = 4000
_SUB = re.compile(r"^[A-Za-z0-9._:@\-]{1,128}$")

TABLES = """
CREATE TABLE disputes (
    id uuid PRIMARY KEY,
    order_id text NOT NULL,
    buyer_id text NOT NULL,
    seller_id text NOT NULL,
    state text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    version integer NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE dispute_history (
    id bigserial PRIMARY KEY,
    dispute_id uuid NOT NULL REFERENCES disputes (id),
    version integer NOT NULL,
    kind text NOT NULL,
    actor_role text NOT NULL,
    actor_id text NOT NULL,
    body text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (dispute_id, version)
);
"""

SELECT_FOR_UPDATE = "SELECT buyer_id, seller_id, state FROM disputes WHERE id = %s FOR UPDATE"
UPDATE = (
    "UPDATE disputes SET version = version + 1, updated_at = now() WHERE id = %s "
    "RETURNING id, order_id, buyer_id, seller_id, state, amount, currency, version, "
    "created_at, updated_at"
)
INSERT_HISTORY = (
    "INSERT INTO dispute_history (dispute_id, version, kind, actor_role, actor_id, body) "
    "VALUES (%s, %s, 'message_posted', %s, %s, %s)"
)
COLUMNS = (
    "id", "order_id", "buyer_id", "seller_id", "state", "amount", "currency", "version",
    "created_at", "updated_at",
)  # fmt: skip


class Refused(Exception):
    """An HTTP refusal: status and a short reason."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Config:
    database_url: str
    schema: str
    jwt_secret: str
    pool_size: int

    @classmethod
    def from_environment(cls) -> Config:
        return cls(
            database_url=os.environ["BENCH_PEER_DATABASE_URL"],
            schema=os.environ["BENCH_PEER_SCHEMA"],
            jwt_secret=os.environ["BENCH_PEER_JWT_SECRET"],
            pool_size=int(os.environ.get("BENCH_PEER_POOL_SIZE", "8")),
        )

    def environment(self) -> dict[str, str]:
        return {
            "BENCH_PEER_DATABASE_URL": self.database_url,
            "BENCH_PEER_SCHEMA": self.schema,
            "BENCH_PEER_JWT_SECRET": self.jwt_secret,
            "BENCH_PEER_POOL_SIZE": str(self.pool_size),
        }

    def pool(self) -> AsyncConnectionPool:
        return AsyncConnectionPool(
            self.database_url,
            min_size=1,  # grows to pool_size under load: the database's connections are few
            max_size=self.pool_size,
            kwargs={"options": f"-c search_path={self.schema}"},
            open=False,
        )


def principal(authorization: str | None, secret: str) -> tuple[str, str]:
    """(role, sub) of a bearer token the gateway would accept; Refused(401) otherwise."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Refused(401, "send Authorization: Bearer <token>")
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "sub", "role"]}
        )
    except jwt.InvalidTokenError as exc:
        raise Refused(401, f"the token is not valid: {exc}") from None
    role, sub = claims["role"], claims["sub"]
    if not isinstance(role, str) or not isinstance(sub, str) or not _SUB.fullmatch(sub):
        raise Refused(401, "the token's role and sub must be strings, sub an id")
    return role, sub


def dispute_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        raise Refused(404, "no such dispute") from None


async def post_message(
    pool: AsyncConnectionPool, dispute_id: uuid.UUID, role: str, who: str, body: str
) -> dict[str, Any]:
    """The one transaction: lock the row, check, bump its version, record the history."""
    if role not in MESSAGE_ROLES:
        raise Refused(403, f"a {role} may not post messages")
    async with pool.connection() as conn, conn.transaction():
        cursor = await conn.execute(SELECT_FOR_UPDATE, (dispute_id,))
        row = await cursor.fetchone()
        if (
            row is None
            or (role == "buyer" and row[0] != who)
            or (role == "seller" and row[1] != who)
        ):
            raise Refused(404, "no such dispute")
        if row[2] == "closed":
            raise Refused(409, "no messages on a closed dispute")
        cursor = await conn.execute(UPDATE, (dispute_id,))
        updated = await cursor.fetchone()
        assert updated is not None  # the row is locked
        dispute = dict(zip(COLUMNS, updated, strict=True))
        await conn.execute(INSERT_HISTORY, (dispute_id, dispute["version"], role, who, body))
    return dispute


def create_tables(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(TABLES)


def seed(url: str, schema: str, parties: list[tuple[str, str]], per_party: int) -> list[list[str]]:
    """`per_party` open disputes for each (buyer, seller); their ids, by party."""
    ids = [[str(uuid.uuid4()) for _ in range(per_party)] for _ in parties]
    rows = [
        (dispute_id, f"order-{dispute_id}", buyer, seller)
        for (buyer, seller), mine in zip(parties, ids, strict=True)
        for dispute_id in mine
    ]
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO disputes (id, order_id, buyer_id, seller_id, state, amount, "
                "currency, version) VALUES (%s, %s, %s, %s, 'awaiting_seller', 5000, 'USD', 1)",
                rows,
            )
    return ids
