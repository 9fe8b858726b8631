"""Small HTTP helpers both services use."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.routing import BaseRoute, Match
from starlette.types import Scope

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> str:
    """Every method some route serves on this request's path, for a 405's `Allow`
    (Starlette's own names only the first route that matched the path)."""
    routes = list(routes)
    # A fresh scope: routing state of the request's own match must not steer these.
    bare = {k: v for k, v in scope.items() if k in ("type", "path", "root_path", "raw_path")}
    return ", ".join(
        method
        for method in METHODS
        if any(route.matches({**bare, "method": method})[0] == Match.FULL for route in routes)
    )
