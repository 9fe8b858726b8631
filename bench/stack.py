"""The real processes under measurement, started as `make run` starts them.

The dispute service, the deadline worker, the projector and the gateway, each
`python -m ...` on free loopback ports, on PostgreSQL in a scratch schema. Orders are
registered in bulk in-process (setup, not measured), so the timed mix is only commands.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from pydantic import SecretStr

from bench.common import ProcStats, persistence_env, scratch_schema, tree_stats
from services.dispute.application import DisputeApplication
from services.dispute.domain import Order, OrderFacts
from services.dispute.domain.values import Actor, Context, Role
from services.gateway.auth import mint_token
from services.gateway.settings import GatewaySettings
from shared.clock import SystemClock
from shared.money import Money

SERVICE_TOKEN = "bench-internal-service-token-0123"
JWT_SECRET = "bench-jwt-secret-0123456789-abcdefghijklmn"
RATE_LIMIT = "1000000/second"  # far above what one machine sends: no 429 distorts figures
START_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 15.0
MODULES = {
    "service": "services.dispute",
    "worker": "services.dispute.worker",
    "projector": "services.dispute.projections",
    "gateway": "services.gateway",
}
ORDER_AMOUNT = 5000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    database_url: str
    schema: str
    logs: Path
    threads: int = 16
    service_processes: int = 1  # DISPUTES_PROCESSES
    service_port: int = field(default_factory=free_port)
    gateway_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTES_")}
        return {
            **keep,
            "DATABASE_URL": self.database_url,
            "DISPUTES_DB_SCHEMA": self.schema,
            "DISPUTES_ENVIRONMENT": "test",
            "DISPUTES_SERVICE_TOKEN": SERVICE_TOKEN,
            "DISPUTES_JWT_SECRET": JWT_SECRET,
            "DISPUTES_HOST": "127.0.0.1",
            "DISPUTES_PORT": str(self.service_port),
            "DISPUTES_THREADS": str(self.threads),
            "DISPUTES_PROCESSES": str(self.service_processes),
            "DISPUTES_GATEWAY_PORT": str(self.gateway_port),
            "DISPUTES_UPSTREAM_URL": self.service_url,
            "DISPUTES_RATE_LIMIT": RATE_LIMIT,
        }

    def start(self, name: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", MODULES[name]], env=self.env(), stdout=log, stderr=log
        )
        log.close()

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def wait_ready(self, url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"the {name} exited ({process.returncode})\n{self.tail()}")
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready in time\n{self.tail()}")
            time.sleep(0.1)

    def start_all(self) -> None:
        self.start("service")
        self.wait_ready(self.service_url)  # it creates the tables
        for name in ("worker", "projector", "gateway"):
            self.start(name)
        self.wait_ready(self.gateway_url)

    def stop_all(self) -> None:
        for name in ("gateway", "projector", "worker", "service"):
            self.stop(name)

    def stats(self) -> dict[str, ProcStats]:
        """Peak RSS and CPU seconds so far of each live process (with its workers)."""
        return {name: tree_stats(p.pid) for name, p in self.processes.items() if p.poll() is None}

    def tail(self, lines: int = 30) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def bearer(self, role: str, sub: str) -> str:
        settings = GatewaySettings(  # type: ignore[call-arg]
            _env_file=None, environment="test", jwt_secret=SecretStr(JWT_SECRET)
        )
        return mint_token(settings, role=role, sub=sub, ttl_seconds=6 * 3600)

    def application(self) -> DisputeApplication:
        """An in-process application on the same schema, for setup and checks."""
        env = persistence_env(self.database_url, self.schema, pool_size=2)
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
def running_stack(database_url: str, *, threads: int = 16, processes: int = 1) -> Iterator[Stack]:
    """A started stack on a scratch schema; everything stopped and dropped afterwards."""
    with (
        scratch_schema(database_url, "bench") as schema,
        tempfile.TemporaryDirectory(prefix="bench-logs-") as logs,
    ):
        stack = Stack(
            database_url, schema, Path(logs), threads=threads, service_processes=processes
        )
        try:
            stack.start_all()
            yield stack
        finally:
            stack.stop_all()
