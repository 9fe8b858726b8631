"""The real processes under measurement (`services.stack`, as `make run` starts them), on a
scratch PostgreSQL schema. Orders are registered in bulk in-process (setup, not
measured), so the timed mix is only commands.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import ProcStats, persistence_env, scratch_schema, tree_stats
from services.dispute.application import DisputeApplication
from services.dispute.domain import Order, OrderFacts
from services.dispute.domain.values import Actor, Context, Role
from services.stack import Stack
from shared.clock import SystemClock
from shared.money import Money

SERVICE_TOKEN = "bench-internal-service-token-0123"
JWT_SECRET = "bench-jwt-secret-0123456789-abcdefghijklmn"
RATE_LIMIT = "1000000/second"  # far above what one machine sends: no 429 distorts figures
ORDER_AMOUNT = 5000


def stats(stack: Stack) -> dict[str, ProcStats]:
    """Peak RSS and CPU seconds so far of each live process (with its workers)."""
    return {name: tree_stats(p.pid) for name, p in stack.processes.items() if p.poll() is None}


def application(stack: Stack) -> DisputeApplication:
    """An in-process application on the stack's schema, for setup and checks."""
    env = persistence_env(stack.database_url, stack.schema, pool_size=2)
    env["CREATE_TABLE"] = "n"  # the service created them
    return DisputeApplication(env=env, clock=SystemClock())


def register_orders(app: DisputeApplication, refs: list[tuple[str, str, str]]) -> None:
    """Registers (order ref, buyer, seller) orders in bulk: a few hundred per transaction."""
    now = datetime.now(UTC)
    service = Actor(Role.SERVICE, "bench")
    batch: list[Order] = []
    for ref, buyer, seller in refs:
        facts = OrderFacts.parse(
            buyer_id=buyer,
            seller_id=seller,
            amount=Money(ORDER_AMOUNT, "USD"),
            payment_method="card",
            placed_at=now - timedelta(days=2),
        )
        ctx = Context(actor=service, at=now, correlation_id=f"setup-{ref}")
        batch.append(Order.register(ctx, ref, facts, app.policy))
        if len(batch) >= 500:
            app.save(*batch)
            batch = []
    if batch:
        app.save(*batch)


@contextmanager
def running_stack(
    database_url: str,
    *,
    threads: int = 16,
    processes: int = 1,
    delivery_env: dict[str, str] | None = None,
) -> Iterator[Stack]:
    """The processes started on a scratch schema; stopped and dropped afterwards. With
    `delivery_env`, the delivery process too, with that environment added."""
    with (
        scratch_schema(database_url, "bench") as schema,
        tempfile.TemporaryDirectory(prefix="bench-logs-") as logs,
    ):
        stack = Stack(
            database_url, schema, Path(logs), service_token=SERVICE_TOKEN,
            jwt_secret=JWT_SECRET,
            extra_env={"DISPUTES_THREADS": str(threads), "DISPUTES_PROCESSES": str(processes),
                       "DISPUTES_RATE_LIMIT": RATE_LIMIT,
                       "DISPUTES_ROLE_RATE_LIMITS": json.dumps({"service": RATE_LIMIT}),
                       **(delivery_env or {})},
        )  # fmt: skip
        others = ("worker", "projector", "gateway")
        if delivery_env is not None:
            others = ("worker", "projector", "delivery", "gateway")
        try:
            stack.start_all(others=others)
            yield stack
        finally:
            stack.stop_all()
