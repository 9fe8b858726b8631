"""The system's real processes on free loopback ports, for the end-to-end tests and the
benchmark: the dispute service, the deadline worker, the projector, the delivery process,
the notary and the gateway, each `python [-O] -m ...` as `make run` starts them, on
PostgreSQL in a schema of their own.

A development tool beside `services/run.py`; nothing in the services imports it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from services.gateway.auth import mint_token
from services.gateway.settings import GatewaySettings
from services.run import command

MODULES = {
    "service": "services.dispute",
    "worker": "services.dispute.worker",
    "projector": "services.dispute.projections",
    "delivery": "services.dispute.delivery",
    "notary": "services.dispute.transparency",
    "gateway": "services.gateway",
}
START_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Stack:
    database_url: str
    schema: str
    logs: Path  # one <process>.log each
    service_token: str
    jwt_secret: str
    service_port: int = field(default_factory=free_port)
    gateway_port: int = field(default_factory=free_port)
    worker_metrics_port: int = field(default_factory=free_port)
    projector_metrics_port: int = field(default_factory=free_port)
    delivery_metrics_port: int = field(default_factory=free_port)
    notary_metrics_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)  # over the defaults of env()

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    def env(self) -> dict[str, str]:
        """This environment without its DISPUTES_* settings, then the stack's own."""
        keep = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTES_")}
        return {
            **keep,
            "DATABASE_URL": self.database_url,
            "DISPUTES_DB_SCHEMA": self.schema,
            "DISPUTES_ENVIRONMENT": "test",
            "DISPUTES_SERVICE_TOKEN": self.service_token,
            "DISPUTES_JWT_SECRET": self.jwt_secret,
            "DISPUTES_HOST": "127.0.0.1",
            "DISPUTES_PORT": str(self.service_port),
            "DISPUTES_GATEWAY_PORT": str(self.gateway_port),
            "DISPUTES_UPSTREAM_URL": self.service_url,
            "DISPUTES_WORKER_METRICS_PORT": str(self.worker_metrics_port),
            "DISPUTES_PROJECTOR_METRICS_PORT": str(self.projector_metrics_port),
            "DISPUTES_DELIVERY_METRICS_PORT": str(self.delivery_metrics_port),
            "DISPUTES_NOTARY_METRICS_PORT": str(self.notary_metrics_port),
            # The Merkle log's checkpoints and development key, with this stack's logs.
            "DISPUTES_DATA_DIR": str(self.logs / "data"),
            "DISPUTES_CHECKPOINT_DIR": str(self.logs / "checkpoints"),
            **self.extra_env,
        }

    def start(self, name: str) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            command(MODULES[name]), env=self.env(), stdout=log, stderr=log
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
                with urllib.request.urlopen(url + "/readyz", timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:  # refused, reset, timed out, or an HTTP error status
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready in time\n{self.tail()}")
            time.sleep(0.1)

    def start_all(self, others: tuple[str, ...] = ("worker", "gateway")) -> None:
        """The service first (it creates the tables), then `others`; ready when the
        gateway is (or the service, without one)."""
        self.start("service")
        self.wait_ready(self.service_url)
        for name in others:
            self.start(name)
        if "gateway" in others:
            self.wait_ready(self.gateway_url)

    def stop_all(self) -> None:
        for name in ("gateway", "notary", "delivery", "projector", "worker", "service"):
            self.stop(name)

    def tail(self, lines: int = 30) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def token(self, role: str, sub: str, ttl_seconds: int = 3600) -> str:
        """A bearer token the stack's gateway accepts."""
        settings = GatewaySettings(  # type: ignore[call-arg]
            _env_file=None,
            environment="test",
            jwt_secret=SecretStr(self.jwt_secret),
            service_token=SecretStr(self.service_token),
        )
        return mint_token(settings, role=role, sub=sub, ttl_seconds=ttl_seconds)
