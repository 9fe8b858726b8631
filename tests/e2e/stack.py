"""The real processes of the system, started as `make run` starts them: the dispute
service, the deadline worker and the gateway, each `python -m ...` on a free port, here
on PostgreSQL in a schema of their own and with the sandbox clock on."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydantic import SecretStr

from services.gateway.auth import mint_token
from services.gateway.settings import GatewaySettings

JWT_SECRET = "e2e-jwt-secret-0123456789-abcdefghijkl"
SERVICE_TOKEN = "e2e-internal-service-token-0123"
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
    logs: Path
    service_port: int = field(default_factory=free_port)
    gateway_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    extra_env: dict[str, str] = field(default_factory=dict)  # over the defaults below

    @property
    def url(self) -> str:
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
            "DISPUTES_SANDBOX": "1",
            "DISPUTES_SERVICE_TOKEN": SERVICE_TOKEN,
            "DISPUTES_JWT_SECRET": JWT_SECRET,
            "DISPUTES_HOST": "127.0.0.1",
            "DISPUTES_PORT": str(self.service_port),
            "DISPUTES_GATEWAY_PORT": str(self.gateway_port),
            "DISPUTES_UPSTREAM_URL": self.service_url,
            "DISPUTES_WORKER_POLL_SECONDS": "0.2",
            "DISPUTES_RATE_LIMIT": "1000/second",
            **self.extra_env,
        }

    def start(self, name: str) -> None:
        module = {
            "service": "services.dispute",
            "worker": "services.dispute.worker",
            "gateway": "services.gateway",
            "projector": "services.dispute.projections",
        }[name]
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", module], env=self.env(), stdout=log, stderr=log
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
        self.wait_ready(self.service_url)  # it creates the schema and tables
        self.start("worker")
        self.start("gateway")
        self.wait_ready(self.url)

    def stop_all(self) -> None:
        for name in ("projector", "gateway", "worker", "service"):
            self.stop(name)

    def tail(self, lines: int = 30) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    def token(self, role: str, sub: str) -> str:
        settings = GatewaySettings(  # type: ignore[call-arg]
            _env_file=None, environment="test", jwt_secret=SecretStr(JWT_SECRET)
        )
        return mint_token(settings, role=role, sub=sub)
