"""`make run`: the whole stack in one terminal, until Ctrl-C.

Starts the dispute service, the deadline worker, the dashboard projector (which keeps
the views behind `GET /v1/disputes` and `/v1/stats/...` up to date), the delivery process
(webhooks, and NATS JetStream when DISPUTES_NATS_URL is set), the notary (the Merkle
log's signed checkpoints; a development signing key is made in DISPUTES_DATA_DIR unless
DISPUTES_CHECKPOINT_KEY is set) and the gateway as
child processes with the current environment: SQLite under ./data by default,
PostgreSQL when DATABASE_URL is set. Waits until the gateway is ready (it checks the
service, which checks the store), prints where the docs are and how to mint a token,
then supervises: a child that dies is started again after a back-off (0.5 s, doubling
to at most 30 s, back to 0.5 s once it has run for a minute) while the others keep
serving. A child that exits with status 2 (bad configuration) is not restarted, since
starting it again cannot help: the launcher stops everything and says so.

Without DISPUTES_SERVICE_TOKEN in the environment, the launcher makes a random one for
its children, so the service's internal port never accepts a published default.

Ctrl-C or SIGTERM stops the gateway first, then the notary, the delivery process, the
projector, the worker and the service, each given a few seconds to finish before it is
killed.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

from shared.ports import ensure_free

# Modules run with `python -O` (assert statements stripped): the dispute service. The
# eventsourcing library checks a runtime-checkable protocol with isinstance inside an
# assert for every event it replays, which was half the time of loading a case; nothing
# in this codebase keeps behaviour in an assert (rules raise their errors), and the
# end-to-end tests run the service this way (services/stack.py).
OPTIMIZED_MODULES = frozenset({"services.dispute"})
READY_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 10.0
BAD_CONFIGURATION = 2  # the exit status of a child whose settings are refused


@dataclass(frozen=True)
class Backoff:
    """The wait before restarting a child that died: `first`, doubling with each death
    in a row up to `most`; a child that ran `stable` seconds starts over at `first`."""

    first: float = 0.5
    most: float = 30.0
    stable: float = 60.0

    def delay(self, deaths_in_a_row: int) -> float:
        return float(min(self.most, self.first * 2 ** max(0, deaths_in_a_row - 1)))


@dataclass
class Child:
    name: str
    module: str
    env: Mapping[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    deaths_in_a_row: int = 0
    restarts: int = 0
    restart_at: float | None = None  # when a dead child is due to start again


Launch = Callable[[Child], subprocess.Popen[bytes]]


def _end_with_the_launcher() -> None:
    """In the child before it runs: on Linux, SIGTERM when the launcher dies, however it
    dies (kill -9 included), so no child outlives it holding its port."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def command(module: str) -> list[str]:
    """`python [-O] -m module`, with this interpreter."""
    return [sys.executable, *(["-O"] if module in OPTIMIZED_MODULES else []), "-m", module]


def launch(child: Child) -> subprocess.Popen[bytes]:
    # A session of its own: Ctrl-C reaches only this launcher, which stops the children
    # in order instead of all of them at once.
    return subprocess.Popen(
        command(child.module),
        env=dict(child.env) if child.env is not None else None,
        start_new_session=True,
        preexec_fn=_end_with_the_launcher,  # the launcher is single-threaded
    )


class ConfigurationError(Exception):
    """A child refused its configuration: restarting it cannot help."""


@dataclass
class Supervisor:
    """Keeps every child running: `check()` notices the dead and restarts them when
    their back-off has passed. Never blocks; the caller decides how often to check."""

    children: list[Child]
    backoff: Backoff = field(default_factory=Backoff)
    launch: Launch = launch
    clock: Callable[[], float] = time.monotonic
    say: Callable[[str], None] = lambda line: print(f"run: {line}", file=sys.stderr, flush=True)

    def start_all(self) -> None:
        for child in self.children:
            self._start(child)

    def _start(self, child: Child) -> None:
        child.process = self.launch(child)
        child.started_at = self.clock()
        child.restart_at = None

    def check(self) -> None:
        now = self.clock()
        for child in self.children:
            process = child.process
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self.say(f"restarting the {child.name} (restart {child.restarts})")
                    self._start(child)
                continue
            if process is None or process.poll() is None:
                continue
            code = process.returncode
            if code == BAD_CONFIGURATION:
                raise ConfigurationError(f"the {child.name} refused its configuration")
            if now - child.started_at >= self.backoff.stable:
                child.deaths_in_a_row = 0
            child.deaths_in_a_row += 1
            wait = self.backoff.delay(child.deaths_in_a_row)
            child.restart_at = now + wait
            self.say(f"the {child.name} exited ({code}); restarting it in {wait:.1f} s")

    def stop(self) -> None:
        stop([c for c in reversed(self.children)])


def _url_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


def ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def stop(children: Sequence[Child]) -> None:
    for child in children:  # in the order given: the gateway first, the service last
        process = child.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                print(f"run: {child.name} did not stop in time; killing it", file=sys.stderr)
                process.kill()
                process.wait()


def children_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The children's environment: this one, with a random internal token unless one
    is given (the service and the gateway must share it; nothing else needs to)."""
    env = dict(environ)
    if not env.get("DISPUTES_SERVICE_TOKEN"):
        env["DISPUTES_SERVICE_TOKEN"] = secrets.token_urlsafe(32)
    return env


def stack_children(environ: Mapping[str, str]) -> list[Child]:
    env = children_env(environ)
    # The gateway forwards to the service started here unless told otherwise.
    service_port = env.get("DISPUTES_PORT", "8001")
    gateway_env = {"DISPUTES_UPSTREAM_URL": f"http://127.0.0.1:{service_port}", **env}
    return [
        Child("dispute service", "services.dispute", env),
        Child("deadline worker", "services.dispute.worker", env),
        Child("projector", "services.dispute.projections", env),
        Child("delivery process", "services.dispute.delivery", env),
        Child("notary", "services.dispute.transparency", env),
        Child("gateway", "services.gateway", gateway_env),
    ]


def development_checkpoint_key() -> str | None:
    """The Merkle log's verifier key; outside production without DISPUTES_CHECKPOINT_KEY,
    the development key is made here (in DISPUTES_DATA_DIR) before any child starts.
    None if the settings are refused: the children say why themselves."""
    from pydantic import ValidationError

    from services.dispute.settings import load_settings
    from services.dispute.transparency.checkpoint import CheckpointError
    from services.dispute.transparency.notary import signer_for

    try:
        return signer_for(load_settings()).verifier.encode()
    except (ValidationError, CheckpointError, OSError):
        return None


class Stop(Exception):
    pass


def main() -> int:
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        raise Stop(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)  # the terminal closed: stop, as for Ctrl-C

    gateway_host = _url_host(os.environ.get("DISPUTES_GATEWAY_HOST", "127.0.0.1"))
    gateway_port = os.environ.get("DISPUTES_GATEWAY_PORT", "8000")
    base = f"http://{gateway_host}:{gateway_port}"
    store = "PostgreSQL (DATABASE_URL)" if os.environ.get("DATABASE_URL") else "SQLite in ./data"
    service_host = os.environ.get("DISPUTES_HOST", "127.0.0.1")
    service_port = os.environ.get("DISPUTES_PORT", "8001")
    # Ports held by another process (another copy of this stack?) stop us here, before
    # "ready" could be answered by that other stack.
    ensure_free(os.environ.get("DISPUTES_GATEWAY_HOST", "127.0.0.1"), int(gateway_port),
                "DISPUTES_GATEWAY_PORT")  # fmt: skip
    ensure_free(service_host, int(service_port), "DISPUTES_PORT")
    # The worker's and the projector's /metrics, unless configured otherwise.
    os.environ.setdefault("DISPUTES_WORKER_METRICS_PORT", "9102")
    os.environ.setdefault("DISPUTES_PROJECTOR_METRICS_PORT", "9103")
    os.environ.setdefault("DISPUTES_DELIVERY_METRICS_PORT", "9104")
    os.environ.setdefault("DISPUTES_NOTARY_METRICS_PORT", "9105")
    verifier_key = development_checkpoint_key()
    supervisor = Supervisor(stack_children(os.environ))
    try:
        supervisor.start_all()
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not ready(base + "/readyz"):
            supervisor.check()
            if time.monotonic() > deadline:
                print(f"run: not ready after {READY_TIMEOUT_SECONDS:.0f} s", file=sys.stderr)
                return 1
            time.sleep(0.2)
        metrics_host = _url_host(service_host)
        sandbox = os.environ.get("DISPUTES_SANDBOX", "").lower() in ("1", "true", "yes", "on")
        worker_metrics = os.environ["DISPUTES_WORKER_METRICS_PORT"]
        projector_metrics = os.environ["DISPUTES_PROJECTOR_METRICS_PORT"]
        delivery_metrics = os.environ["DISPUTES_DELIVERY_METRICS_PORT"]
        print(
            f"\nDisputes API ready on {base} ({store}).\n"
            f"  Docs:         {base}/docs  or {base}/redoc  (OpenAPI: {base}/openapi.json)\n"
            f"  Dashboard:    {base}/dashboard  (asks for an agent, auditor or service token)\n"
            f"  Metrics:      {base}/metrics, http://{metrics_host}:{service_port}/metrics, "
            f"worker :{worker_metrics}, projector :{projector_metrics}, "
            f"delivery :{delivery_metrics}, "
            f"notary :{os.environ['DISPUTES_NOTARY_METRICS_PORT']}\n"
            f"  Sandbox:      {'ON: POST /v1/sandbox/clock moves time' if sandbox else 'off'} "
            "(DISPUTES_SANDBOX)\n"
            f"  Mint a token: {sys.executable} -m services.gateway.tokens "
            "--role buyer --sub buyer-1\n"
            f"  Then:         curl -H 'Authorization: Bearer <token>' {base}/v1/state-machine\n"
            + (f"  Merkle log:   checkpoints signed by {verifier_key}\n" if verifier_key else "")
            + "  A child that dies is restarted; Ctrl-C stops everything.\n",
            flush=True,
        )
        while True:
            supervisor.check()
            time.sleep(0.5)
    except ConfigurationError as why:
        print(f"run: {why}; stopping", file=sys.stderr)
        return 1
    except Stop as why:
        print(f"\nrun: {why}: stopping", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop()


if __name__ == "__main__":
    sys.exit(main())
