"""X-Request-ID on every response, and the last-resort 500 problem (no stack trace).

Both services use it: the gateway creates or passes on the id, the dispute service
records it as the correlation id of the events a request causes.
"""

from __future__ import annotations

import logging
import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.contract import PROBLEM_MEDIA_TYPE, Problem, problem_type

log = logging.getLogger("shared.request_id")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == b"x-request-id":
            text = value.decode("latin-1").strip()
            if _REQUEST_ID.match(text):
                return text
    return str(uuid.uuid4())


def internal_error_problem(path: str, request_id: str) -> bytes:
    """The 500 body: no stack trace, only the request id to find the logged one by."""
    return (
        Problem(
            type=problem_type("internal_error"),
            title="Internal error",
            status=500,
            detail=f"an unexpected error occurred; it was logged under request id {request_id}",
            instance=path,
            request_id=request_id,
        )
        .model_dump_json(exclude_none=True)
        .encode()
    )


class RequestIdMiddleware:
    """Takes the caller's X-Request-ID (or makes one), exposes it as
    `request.state.request_id`, echoes it on the response, and turns an unexpected
    exception into a 500 problem that carries it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope.get("headers", []))
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"
                ]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unexpected error in request %s %s", request_id, scope.get("path"))
            if started:
                raise
            body = internal_error_problem(scope.get("path", ""), request_id)
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                        (b"content-length", str(len(body)).encode()),
                        header,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
