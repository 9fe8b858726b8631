"""Role-level authorization at the gateway: an early check, from the one permission table.

The table (`shared/permissions.py`) says which roles may call each route: each public
route reads its roles from it (`routes.common.ForwardingRoute`) and the forwarder refuses
any other role. The dispute service enforces it too, and decides what a party may see
(its own disputes and orders only, else 404). The gateway checks on the path it forwards:
`PathGuard` refuses dot segments and encoded slashes before routing, so the route matched
here is the route the service sees.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from .problems import gateway_problem_response

__all__ = ["PathGuard", "path_refusal"]


def path_refusal(raw_path: bytes) -> str | None:
    """Why a request path cannot be routed as it is, or None: a `.` or `..` segment (also
    percent-encoded), an encoded `/` or `\\`, or a backslash. An HTTP client or proxy on
    the way may resolve such a path to another route than the one it seems to name."""
    for segment in raw_path.split(b"/"):
        if b"\\" in segment:
            return "a path may not contain a backslash"
        lowered = segment.lower()
        if b"%2f" in lowered or b"%5c" in lowered:
            return "a path may not contain an encoded slash or backslash"
        if unquote_to_bytes(segment) in (b".", b".."):
            return "a path may not contain '.' or '..' segments"
    return None


class PathGuard:
    """ASGI middleware: answers 400 `invalid_path` for a path `path_refusal` refuses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            why = path_refusal(raw.split(b"?", 1)[0])
            if why is not None:
                response = gateway_problem_response(scope, "invalid_path", why)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
