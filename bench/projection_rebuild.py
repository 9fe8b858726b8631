"""How fast the dashboard projections rebuild from zero (events per second), on PostgreSQL.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python bench/projection_rebuild.py [--events 100000] [--batch-size 1000] [--keep]

Seeds a new schema with at least `--events` events: disputes driven through the domain's
own commands (open, reject, revise, offer, accept the offer, refund paid: 8 events per
dispute with its order's), saved a few hundred aggregates per transaction. Then rebuilds
every view from zero with the projector and prints the rate. The schema is dropped at the
end unless `--keep` is given (then `DISPUTES_DB_SCHEMA=<schema> python -m
services.dispute.projections rebuild` rebuilds it again through the command line).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import persistence_env
from services.dispute.application import DisputeApplication
from services.dispute.domain import Dispute, Order, OrderFacts
from services.dispute.domain.values import Actor, Context, Role
from services.dispute.projections import Projector
from shared.clock import FixedClock
from shared.money import Money

EVENTS_PER_DISPUTE = 8
REASONS = ["not_received", "late_delivery", "damaged", "wrong_item", "missing_parts"]
PHOTO = [{"kind": "photo", "uri": "https://files.example/p.jpg", "sha256": "c" * 64}]


def one_dispute(app: DisputeApplication, n: int, at: datetime) -> tuple[Order, Dispute]:
    buyer, seller = Actor(Role.BUYER, f"b{n % 997}"), Actor(Role.SELLER, f"s{n % 101}")
    service = Actor(Role.SERVICE, "orders")

    def ctx(actor: Actor, minutes: int) -> Context:
        return Context(actor=actor, at=at + timedelta(minutes=minutes), correlation_id=f"r{n}")

    amount = 1000 + n % 5000
    facts = OrderFacts.parse(
        buyer_id=buyer.id,
        seller_id=seller.id,
        amount=Money(amount, "USD"),
        payment_method="card" if n % 2 else "wallet",
        placed_at=at - timedelta(days=3),
    )
    order = Order.register(ctx(service, 0), f"order-{n}", facts, app.policy)
    dispute = Dispute.open(
        ctx(buyer, 1),
        order,
        reason=REASONS[n % len(REASONS)],
        requested_resolution="refund_only",
        amount=Money(amount, "USD"),
        description="bench",
        evidence=PHOTO,
        policy=app.policy,
    )
    dispute.reject(ctx(seller, 60), reason="not so")
    dispute.revise(ctx(buyer, 120), requested_resolution="refund_only", amount=amount - 1)
    dispute.offer(ctx(seller, 180), type="partial_refund", amount=amount // 2, message="half")
    dispute.accept_offer(ctx(buyer, 240))
    paid = at + timedelta(days=2)
    dispute.refund_paid(Context(service, paid, f"p{n}"), reference=f"ref{n}", paid_at=paid)
    return order, dispute


def seed(app: DisputeApplication, events: int, per_save: int) -> int:
    disputes = -(-events // EVENTS_PER_DISPUTE)
    start = datetime(2026, 1, 5, 9, tzinfo=UTC)
    pending: list[Order | Dispute] = []
    for n in range(disputes):
        pending += one_dispute(app, n, start + timedelta(minutes=7 * n))
        if len(pending) >= 2 * per_save:
            app.save(*pending)
            pending = []
    if pending:
        app.save(*pending)
    return app.recorder.max_notification_id() or 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=1000, help="events per transaction")
    parser.add_argument("--per-save", type=int, default=250, help="disputes per seed transaction")
    parser.add_argument("--keep", action="store_true", help="keep the seeded schema")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if not url:
        parser.error("set DATABASE_URL=postgresql://...")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    app = DisputeApplication(env=persistence_env(url, schema), clock=FixedClock(datetime.now(UTC)))
    try:
        began = time.perf_counter()
        recorded = seed(app, args.events, args.per_save)
        print(f"seeded {recorded} events in schema {schema} in {time.perf_counter() - began:.1f} s")
        projector = Projector(app, batch_size=args.batch_size)
        projector.catch_up()  # first build (and warm-up)
        report = projector.rebuild()
        print(
            f"rebuild from zero of {', '.join(report.views)}: {report.events} events in "
            f"{report.seconds:.1f} s = {report.events_per_second:,.0f} events/s "
            f"(batch {args.batch_size})"
        )
        rows = projector.views["summary"].dump()["dashboard_disputes"]
        print(f"summary rows: {len(rows)}")
    finally:
        app.close()
        if not args.keep:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    return 0


if __name__ == "__main__":
    sys.exit(main())
