"""What one command costs the dispute service's Python in process, without HTTP, on
PostgreSQL: `POST /v1/disputes/{id}/messages` as the service runs it (load, decide, save
with the hash chain) plus its JSON answer.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -O -m bench.command_cost [--messages 10 100 400] [--commands 300]

For each case size (messages already on the case, which grows by `--commands` while it is
measured; one case per variant) it prints the CPU time of this process
per command (PostgreSQL's share is not in it), with the copies each process keeps
(`DISPUTES_CACHED_DISPUTES`, the default) and without them (0: every command reads the
latest snapshot and the events after it and replays them), and the answer's rendering
alone at that size, best of a few hundred. In a scratch schema, dropped afterwards. A script, not a
test: its figures are measurements, nothing asserts on them.
"""

from __future__ import annotations

import argparse
import time
import timeit
from datetime import timedelta

from bench.common import database_url, persistence_env, scratch_schema
from services.dispute.api.representations import dispute_reply
from services.dispute.application import CACHED_DISPUTES, DisputeApplication
from services.dispute.domain import Dispute, OrderFacts
from services.dispute.domain.commands import PostMessage
from services.dispute.domain.values import Actor, Role
from shared.money import Money

BUYER = Actor(Role.BUYER, "b1")
SERVICE = Actor(Role.SERVICE, "orders")


def open_case(app: DisputeApplication, order_ref: str) -> Dispute:
    now = app.clock.now()
    facts = OrderFacts.parse(
        buyer_id=BUYER.id, seller_id="s1", amount=Money(10_000, "USD"), payment_method="card",
        placed_at=now - timedelta(days=10), shipped_at=now - timedelta(days=9),
        delivered_at=now - timedelta(days=5),
    )  # fmt: skip
    app.put_order(SERVICE, "bench", order_ref, facts)
    return app.open_dispute(
        BUYER, "bench", order_ref=order_ref, reason="not_received",
        requested_resolution="refund_only", amount=Money(5_000, "USD"), description="bench",
        evidence=[],
    )  # fmt: skip


def message(app: DisputeApplication, dispute: Dispute, n: int) -> Dispute:
    command = PostMessage(body=f"message {n}: where is my parcel?")
    return app.handle(BUYER, f"bench-{n}", str(dispute.id), command)


def cpu_per_command(app: DisputeApplication, dispute: Dispute, commands: int) -> float:
    """Microseconds of this process's CPU per command and its answer."""
    began = time.process_time()
    for n in range(commands):
        dispute_reply(message(app, dispute, n), BUYER, at=app.clock.now())
    return (time.process_time() - began) / commands * 1e6


def answer_seconds(dispute: Dispute) -> float:
    """The best time of one answer (`dispute_reply`), in seconds."""
    return min(timeit.repeat(lambda: dispute_reply(dispute, BUYER), number=100, repeat=5)) / 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, nargs="+", default=[10, 100, 400])
    parser.add_argument("--commands", type=int, default=300)
    args = parser.parse_args()
    url = database_url()
    print("| messages on the case | CPU µs per command, kept copies | without | answer alone µs |")
    print("|---:|---:|---:|---:|")
    with scratch_schema(url, "command_cost") as schema:
        env = persistence_env(url, schema)
        kept = DisputeApplication(env=env, cached_disputes=CACHED_DISPUTES)
        plain = DisputeApplication(env={**env, "CREATE_TABLE": "n"}, cached_disputes=0)
        try:
            for size in args.messages:
                cases = [open_case(kept, f"order-{size}-{variant}") for variant in "ab"]
                for n in range(size):
                    cases = [message(kept, case, n) for case in cases]
                answer = answer_seconds(kept.get_dispute(BUYER, cases[0].id))
                with_kept = cpu_per_command(kept, cases[0], args.commands)
                without = cpu_per_command(plain, cases[1], args.commands)
                print(f"| {size:,} | {with_kept:,.0f} | {without:,.0f} | {answer * 1e6:,.0f} |")
        finally:
            kept.close()
            plain.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
