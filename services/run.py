"""`make run`: the whole stack in one terminal, until Ctrl-C.

Starts the dispute service, the deadline worker, the dashboard projector (which keeps
the views behind `GET /v1/disputes` and `/v1/stats/...` up to date) and the gateway as
child processes with the current environment: SQLite under ./data by default,
PostgreSQL when DATABASE_URL is set. Waits until the gateway is ready (it checks the
service, which checks the store), prints where the docs are and how to mint a token,
then waits. Ctrl-C or SIGTERM stops the gateway first, then the projector, the worker
and the service, each given a few seconds to finish before it is killed. If any child
dies, the others are stopped too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

READY_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 10.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def _url_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start(name: str, module: str, env: dict[str, str] | None = None) -> Child:
    # A session of its own: Ctrl-C reaches only this launcher, which stops the children
    # in order instead of all of them at once.
    process = subprocess.Popen([sys.executable, "-m", module], env=env, start_new_session=True)
    return Child(name, process)


def stop(children: Sequence[Child]) -> None:
    for child in children:  # in the order given: the gateway first, the service last
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
            try:
                child.process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                print(f"run: {child.name} did not stop in time; killing it", file=sys.stderr)
                child.process.kill()
                child.process.wait()


class Stop(Exception):
    pass


def main() -> int:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    gateway_host = _url_host(os.environ.get("DISPUTES_GATEWAY_HOST", "127.0.0.1"))
    gateway_port = os.environ.get("DISPUTES_GATEWAY_PORT", "8000")
    base = f"http://{gateway_host}:{gateway_port}"
    store = "PostgreSQL (DATABASE_URL)" if os.environ.get("DATABASE_URL") else "SQLite in ./data"
    children: list[Child] = []
    try:
        children.append(start("dispute service", "services.dispute"))
        children.append(start("deadline worker", "services.dispute.worker"))
        children.append(start("projector", "services.dispute.projections"))
        # The gateway forwards to the service started here unless told otherwise.
        service_port = os.environ.get("DISPUTES_PORT", "8001")
        gateway_env = {
            "DISPUTES_UPSTREAM_URL": f"http://127.0.0.1:{service_port}",
            **os.environ,
        }
        children.append(start("gateway", "services.gateway", gateway_env))
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not ready(base + "/readyz"):
            if dead := [c for c in children if c.process.poll() is not None]:
                print(f"run: the {dead[0].name} exited while starting", file=sys.stderr)
                return 1
            if time.monotonic() > deadline:
                print(f"run: not ready after {READY_TIMEOUT_SECONDS:.0f} s", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(
            f"\nDisputes API ready on {base} ({store}).\n"
            f"  Docs:         {base}/docs  (OpenAPI: {base}/openapi.json)\n"
            f"  Mint a token: {sys.executable} -m services.gateway.tokens "
            "--role buyer --sub buyer-1\n"
            f"  Then:         curl -H 'Authorization: Bearer <token>' {base}/v1/state-machine\n"
            "  Ctrl-C stops everything.\n",
            flush=True,
        )
        while True:
            if dead := [c for c in children if c.process.poll() is not None]:
                code = dead[0].process.returncode
                print(f"run: the {dead[0].name} exited ({code}); stopping", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except Stop as why:
        print(f"\nrun: {why}: stopping", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop(list(reversed(children)))


if __name__ == "__main__":
    sys.exit(main())
