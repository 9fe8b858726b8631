"""The public contract as routes: their signatures are the OpenAPI document.

One module per concern, included in the order the document lists them. Every route
forwards to the dispute service (`common.ForwardingRoute`); its parameters are the
contract's types (`shared.contract`: no limit is written here) and who may call it is the
permission table's (`shared.permissions`), read by the forwarder and by the summaries.
"""

from __future__ import annotations

from typing import get_args

from fastapi import APIRouter, Security
from fastapi.security import HTTPBearer

from shared import contract

from . import audit, dashboards, disputes, feed, orders, sandbox
from .common import ForwardingRoute

bearer = HTTPBearer(
    bearerFormat="JWT",
    description=f"HS256 JWT with claims sub, role ({', '.join(get_args(contract.Role))}), exp",
)


def public_router() -> APIRouter:
    """Every public route, each needing the bearer token."""
    router = APIRouter(route_class=ForwardingRoute, dependencies=[Security(bearer)])
    for part in (orders, disputes, feed, dashboards, audit, sandbox):
        router.include_router(part.router)
    return router


__all__ = ["bearer", "public_router"]
