"""The plain CRUD peer: the FastAPI service a team would write instead of this one, for
the benchmark's yardstick (issue 16). Not part of the product.

What a competent team would ship, and no less: pydantic request and response models, the
bearer token checked in-process with PyJWT (the gateway's format), a psycopg 3 pool
(async, one per worker process, as many connections as the service's threads), the
command as one transaction (`SELECT ... FOR UPDATE`, `UPDATE`, `INSERT` of a history row:
bench/plain.py), uvicorn's access log on. What it lacks is what makes the dispute service
what it is: no event log or hash chain, no idempotency keys, no If-Match, no feed, no
gateway, one permission check.

    BENCH_PEER_DATABASE_URL=... BENCH_PEER_SCHEMA=... BENCH_PEER_JWT_SECRET=... \\
        python -m uvicorn --factory bench.peer:create_app --workers 2 --port 8010
"""

# No `from __future__ import annotations`: FastAPI must see the local dependency itself.

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, Field

from bench.plain import Config, Refused, dispute_uuid, post_message, principal


class MessageIn(BaseModel):
    body: str = Field(min_length=1, max_length=4000)


class Money(BaseModel):
    amount: int
    currency: str


class DisputeOut(BaseModel):
    id: str
    order_id: str
    buyer_id: str
    seller_id: str
    state: str
    amount: Money
    version: int
    created_at: datetime
    updated_at: datetime


def create_app(config: Config | None = None) -> FastAPI:
    settings = config or Config.from_environment()
    pool = settings.pool()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.open(wait=True)
        yield
        await pool.close()

    app = FastAPI(title="plain CRUD peer", lifespan=lifespan)

    def current_principal(authorization: Annotated[str | None, Header()] = None) -> tuple[str, str]:
        try:
            return principal(authorization, settings.jwt_secret)
        except Refused as exc:
            raise HTTPException(exc.status, exc.detail) from None

    @app.post("/v1/disputes/{dispute_id}/messages", response_model=DisputeOut)
    async def messages(
        dispute_id: str,
        message: MessageIn,
        who: Annotated[tuple[str, str], Depends(current_principal)],
    ) -> DisputeOut:
        role, sub = who
        try:
            row = await post_message(pool, dispute_uuid(dispute_id), role, sub, message.body)
        except Refused as exc:
            raise HTTPException(exc.status, exc.detail) from None
        return DisputeOut(
            id=str(row["id"]), order_id=row["order_id"], buyer_id=row["buyer_id"],
            seller_id=row["seller_id"], state=row["state"],
            amount=Money(amount=row["amount"], currency=row["currency"]),
            version=row["version"], created_at=row["created_at"], updated_at=row["updated_at"],
        )  # fmt: skip

    return app
