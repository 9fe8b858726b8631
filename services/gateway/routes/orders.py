"""Orders: registered by the orders service, extended by sellers, charged back."""

# No `from __future__ import annotations`: FastAPI reads the endpoints' annotations.

from typing import Any

from shared import contract

from .common import (
    COMMAND_PROBLEMS,
    ETAG_HEADER,
    ID_HEADER,
    LOCATION,
    READ_PROBLEMS,
    IdempotencyKey,
    RequestId,
    forwarding_router,
    ok,
    roles,
)

router = forwarding_router()

ORDER = "/v1/orders/{order_id}"
EXTENSIONS = ORDER + "/protection-extensions"
CHARGEBACKS = ORDER + "/chargebacks"


@router.put(
    ORDER,
    tags=["orders"],
    summary=f"Register an order or add shipping facts ({roles('PUT', ORDER)})",
    response_model=contract.Order,
    responses={
        **ok(contract.Order, "shipping facts added", **ID_HEADER, **ETAG_HEADER),
        201: {
            "model": contract.Order,
            "description": "registered",
            "headers": {**ID_HEADER, **ETAG_HEADER, **LOCATION},
        },
        **COMMAND_PROBLEMS,
    },
)
def put_order(
    order_id: contract.Id,
    body: contract.OrderPut,
    request_id: RequestId = None,
    idempotency_key: IdempotencyKey = None,
) -> Any: ...


@router.post(
    EXTENSIONS,
    tags=["orders"],
    summary="Extend the buyer-protection window before a dispute exists "
    f"({roles('POST', EXTENSIONS)})",
    response_model=contract.Order,
    responses={**ok(contract.Order, "the order", **ETAG_HEADER), **COMMAND_PROBLEMS},
)
def extend_protection(
    order_id: contract.Id,
    body: contract.ProtectionExtensionCreate,
    request_id: RequestId = None,
    idempotency_key: IdempotencyKey = None,
) -> Any: ...


@router.post(
    CHARGEBACKS,
    tags=["orders"],
    summary=f"Report a chargeback on an order ({roles('POST', CHARGEBACKS)})",
    description="An open dispute on the order closes with outcome `chargeback` (no refund is "
    "paid for it afterwards); after a paid refund the chargeback is flagged "
    "`double_recovery` with its `amount_at_risk`; the order can no longer be disputed "
    "(409 order_charged_back). A reference is recorded once per order (409 "
    "chargeback_exists).",
    status_code=201,
    response_model=contract.Order,
    responses={
        201: {
            "model": contract.Order,
            "description": "recorded; the order with its chargebacks",
            "headers": {**ID_HEADER, **ETAG_HEADER},
        },
        **COMMAND_PROBLEMS,
    },
)
def record_chargeback(
    order_id: str,
    body: contract.ChargebackCreate,
    request_id: RequestId = None,
    idempotency_key: IdempotencyKey = None,
) -> Any: ...


@router.get(
    ORDER,
    tags=["orders"],
    summary="An order, with protection_ends_at and its dispute_id",
    response_model=contract.Order,
    responses={**ok(contract.Order, "the order", **ETAG_HEADER), **READ_PROBLEMS},
)
def get_order(order_id: contract.Id, request_id: RequestId = None) -> Any: ...
