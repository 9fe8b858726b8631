"""The bare-ASGI floor: the peer's command (bench/plain.py: the same token check and the
same transaction of three statements) with no framework, orjson for the JSON and no
access log. What Python and this database allow one command at the least, for the
benchmark (issue 16). Not part of the product.

    BENCH_PEER_DATABASE_URL=... BENCH_PEER_SCHEMA=... BENCH_PEER_JWT_SECRET=... \\
        python -m uvicorn --factory bench.floor:create_app --workers 2 --no-access-log
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from bench.plain import MAX_BODY_CHARS, Config, Refused, dispute_uuid, post_message, principal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
JSON = [(b"content-type", b"application/json")]
PREFIX, SUFFIX = "/v1/disputes/", "/messages"


def create_app(config: Config | None = None) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    settings = config or Config.from_environment()
    pool = settings.pool()

    async def lifespan(receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await pool.open(wait=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await pool.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def reply(send: Send, status: int, payload: object) -> None:
        await send({"type": "http.response.start", "status": status, "headers": JSON})
        await send({"type": "http.response.body", "body": orjson.dumps(payload)})

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        path: str = scope["path"]
        if scope["method"] != "POST" or not (path.startswith(PREFIX) and path.endswith(SUFFIX)):
            await reply(send, 404, {"detail": "not found"})
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
        try:
            role, sub = principal(authorization, settings.jwt_secret)
            try:
                body = orjson.loads(b"".join(chunks))["body"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise Refused(422, "a JSON object with a body") from None
            if not isinstance(body, str) or not 1 <= len(body) <= MAX_BODY_CHARS:
                raise Refused(422, f"body: 1 to {MAX_BODY_CHARS} characters")
            dispute_id = dispute_uuid(path[len(PREFIX) : -len(SUFFIX)])
            row = await post_message(pool, dispute_id, role, sub, body)
        except Refused as exc:
            await reply(send, exc.status, {"detail": exc.detail})
            return
        row["amount"] = {"amount": row["amount"], "currency": row.pop("currency")}
        row["id"] = str(row["id"])
        await reply(send, 200, row)

    return app
