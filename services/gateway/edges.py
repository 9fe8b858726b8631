"""The gateway's edges: size caps on headers and security headers on every response.

- `HeaderLimits`: a request whose headers total more than `max_header_bytes` answers 431
  (`headers_too_large`) and one whose Authorization header is longer than
  `max_token_bytes` answers 401, before anything parses them.
- `SecurityHeaders`: `X-Content-Type-Options: nosniff`, `X-Frame-Options: DENY`,
  `Referrer-Policy: no-referrer` and a Content-Security-Policy on every response: the API
  and the docs may not be framed (`frame-ancestors 'none'`); the dashboard runs only its
  own script and style files (and inline ones by hash) and talks only to this origin.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import gateway_problem, problem_response

API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# Swagger UI and ReDoc (/docs, /redoc) come from this origin (fastapi-offline's copies)
# and run an inline script; they may not be framed either.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_INLINE = re.compile(rb"<(script|style)(?:\s[^>]*)?>(.*?)</\1>", re.S | re.I)


def dashboard_csp(html: str) -> str:
    """Only the dashboard's own files (/dashboard/assets, this origin) and any inline
    script or style of the page itself (by its SHA-256: the page has none) run; it talks
    only to this origin, and nothing may frame it."""
    sources: dict[bytes, list[str]] = {b"script": ["'self'"], b"style": ["'self'"]}
    for tag, body in _INLINE.findall(html.encode()):
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
        sources[tag.lower()].append(f"'sha256-{digest}'")
    script = " ".join(sources[b"script"])
    style = " ".join(sources[b"style"])
    return (
        f"default-src 'none'; script-src {script}; style-src {style}; connect-src 'self'; "
        "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


class HeaderLimits:
    def __init__(self, app: ASGIApp, *, max_header_bytes: int, max_token_bytes: int) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.max_token_bytes = max_token_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers", [])
            total = sum(len(name) + len(value) + 4 for name, value in headers)
            if total > self.max_header_bytes:
                problem = gateway_problem(
                    "headers_too_large",
                    f"the request headers may total at most {self.max_header_bytes} bytes",
                )
                await problem_response(problem, Request(scope))(scope, receive, send)
                return
            for name, value in headers:
                if name.lower() == b"authorization" and len(value) > self.max_token_bytes:
                    problem = gateway_problem(
                        "unauthenticated",
                        f"the Authorization header may be at most {self.max_token_bytes} bytes",
                        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
                    )
                    await problem_response(problem, Request(scope))(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class SecurityHeaders:
    def __init__(self, app: ASGIApp, *, dashboard_policy: str) -> None:
        self.app = app
        self.dashboard_policy = dashboard_policy

    def policy(self, path: str) -> str:
        if path == "/dashboard":
            return self.dashboard_policy
        if path.startswith(("/docs", "/redoc")):
            return DOCS_CSP
        return API_CSP

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"content-security-policy", self.policy(scope.get("path", "")).encode()),
        ]
        names = {name for name, _ in added}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*kept, *added]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
