"""Builds the dispute service under test, on the `backend` fixture's store, and calls it
as the gateway would (internal token and principal headers)."""

from __future__ import annotations

import hashlib
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from services.dispute.api import create_app
from services.dispute.settings import Settings

with warnings.catch_warnings():
    # starlette asks for httpx2, which is not pinned; httpx works the same here.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = "test-internal-token-0123456789"
PHOTO = {
    "kind": "photo",
    "uri": "https://files.example/photo.jpg",
    "sha256": hashlib.sha256(b"photo").hexdigest(),
}


def settings_for(backend: dict[str, str], **overrides: Any) -> Settings:
    """Service settings on the store the `backend` fixture made."""
    base: dict[str, Any] = {"environment": "test", "service_token": TOKEN, "threads": 8}
    if backend["PERSISTENCE_MODULE"].endswith("postgres"):
        user, password = backend["POSTGRES_USER"], backend["POSTGRES_PASSWORD"]
        host, port = backend["POSTGRES_HOST"], backend["POSTGRES_PORT"]
        base["database_url"] = (
            f"postgresql://{user}:{password}@{host}:{port}/{backend['POSTGRES_DBNAME']}"
        )
        base["db_schema"] = backend["POSTGRES_SCHEMA"]
    else:
        base["database_url"] = None
        base["data_dir"] = Path(backend["SQLITE_DBNAME"]).parent
    return Settings(_env_file=None, **{**base, **overrides})  # type: ignore[call-arg]


def headers(role: str, principal: str, **extra: str) -> dict[str, str]:
    return {"X-Internal-Token": TOKEN, "X-Principal-Role": role, "X-Principal-Id": principal,
            **extra}  # fmt: skip


class Api:
    """A TestClient plus the calls most tests make."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def call(
        self, method: str, path: str, role: str, principal: str, body: Any = None, **hdrs: str
    ) -> httpx.Response:
        extra = {k.replace("_", "-"): v for k, v in hdrs.items()}
        return self.client.request(
            method, path, json=body, headers=headers(role, principal, **extra)
        )

    def register_order(
        self, ref: str | None = None, *, buyer: str = "b1", seller: str = "s1", amount: int = 5000
    ) -> str:
        ref = ref or f"o-{uuid.uuid4().hex[:10]}"
        response = self.call("PUT", f"/v1/orders/{ref}", "service", "orders", order_body(
            buyer=buyer, seller=seller, amount=amount))  # fmt: skip
        assert response.status_code == 201, response.text
        return ref

    def open_dispute(self, order: str | None = None, *, buyer: str = "b1", **body: Any) -> dict:
        order = order or self.register_order(buyer=buyer)
        response = self.call("POST", "/v1/disputes", "buyer", buyer, dispute_body(order, **body))
        assert response.status_code == 201, response.text
        return response.json()

    def act(
        self, dispute: dict | str, action: str, role: str, principal: str, body: Any = None,
        **hdrs: str,
    ) -> httpx.Response:  # fmt: skip
        dispute_id = dispute if isinstance(dispute, str) else dispute["id"]
        return self.call(
            "POST", f"/v1/disputes/{dispute_id}/{action}", role, principal, body, **hdrs
        )


def order_body(*, buyer: str = "b1", seller: str = "s1", amount: int = 5000) -> dict[str, Any]:
    placed = datetime.now(UTC) - timedelta(days=3)
    return {
        "buyer_id": buyer,
        "seller_id": seller,
        "amount": {"amount": amount, "currency": "USD"},
        "payment_method": "card",
        "placed_at": placed.isoformat(),
    }


def dispute_body(order: str, **overrides: Any) -> dict[str, Any]:
    return {
        "order_id": order,
        "reason": "damaged",
        "requested_resolution": "refund_only",
        "amount": {"amount": 5000, "currency": "USD"},
        "description": "arrived broken",
        "evidence": [PHOTO],
        **overrides,
    }


@contextmanager
def running_service(backend: dict[str, str], **overrides: Any) -> Iterator[Api]:
    app = create_app(settings_for(backend, **overrides))
    with TestClient(app) as client:
        yield Api(client)


@contextmanager
def uvicorn_server(backend: dict[str, str], **overrides: Any) -> Iterator[str]:
    """The service on a real uvicorn server on a free 127.0.0.1 port; yields its base URL."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(settings_for(backend, **overrides))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
