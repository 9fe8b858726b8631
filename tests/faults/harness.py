"""Fault injection: a private PostgreSQL cluster, the supervised stack, a retrying load.

- `Cluster`: `initdb` + `pg_ctl` from the installed PostgreSQL (run as the `postgres`
  user when we are root) in a temporary directory, on a free port.
- `Stack`: `python -m services.run` (the supervisor of `make run`) on that cluster:
  the dispute service, the deadline worker, the projector and the gateway. A child
  killed with SIGKILL is restarted by the supervisor, as in production.
- `Load`: client threads posting dispute messages through the gateway. Each command has
  its own Idempotency-Key and is retried with the same key after a 503, a 409
  `idempotency_in_progress`, a time-out or a refused connection, as a careful client
  does. It records every answer.
- `check`: after a fault, every acknowledged command must be stored exactly once
  (each message carries its key), no refused command may be stored, and the stack
  must answer again.

`tests/faults/test_faults.py` asserts that; `python -m tests.faults` (`make faults`)
prints the figures per fault.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

from services.stack import free_port

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))
RETRY_PAUSE_SECONDS = 0.2
REQUEST_TIMEOUT_SECONDS = 30.0
GIVE_UP_SECONDS = 60.0  # a command still unanswered after this counts as "gave up"
RETRYABLE = {502, 503, 504}
SCHEMA = "faults"
MESSAGES_PER_DISPUTE = 40


def available() -> str | None:
    """Why fault injection cannot run here (None: it can)."""
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL binaries in {PG_BIN} (set PG_BIN)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root needs runuser to start PostgreSQL as the postgres user"
    return None


# PostgreSQL --------------------------------------------------------------------------


class Cluster:
    """A throw-away PostgreSQL cluster on a free port."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.log = self.dir / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, timeout=120)

    def create(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c fsync=off -c full_page_writes=off"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def accepting(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=1) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def wait_accepting(self, timeout: float = 60.0) -> float:
        """Waits until a connection succeeds; returns that moment (monotonic)."""
        deadline = time.monotonic() + timeout
        while not self.accepting():
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL not accepting connections\n{self.tail()}")
            time.sleep(0.02)
        return time.monotonic()

    def tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# The stack, supervised ---------------------------------------------------------------

MODULES = {
    "service": "services.dispute",
    "worker": "services.dispute.worker",
    "projector": "services.dispute.projections",
    "gateway": "services.gateway",
}


class Stack:
    """`python -m services.run` on the cluster, from `root` (this checkout by default)."""

    def __init__(self, database_url: str, logs: Path, root: Path | None = None) -> None:
        self.database_url = database_url
        self.logs = logs
        self.root = root or Path(__file__).resolve().parents[2]
        self.gateway_port = free_port()
        self.service_port = free_port()
        self.jwt_secret = uuid.uuid4().hex + uuid.uuid4().hex
        self.service_token = uuid.uuid4().hex + uuid.uuid4().hex
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    def env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith("DISPUTES_")}
        return {
            **keep,
            "PYTHONPATH": str(self.root),
            "DATABASE_URL": self.database_url,
            "DISPUTES_DB_SCHEMA": SCHEMA,
            "DISPUTES_ENVIRONMENT": "test",
            "DISPUTES_SERVICE_TOKEN": self.service_token,
            "DISPUTES_JWT_SECRET": self.jwt_secret,
            "DISPUTES_HOST": "127.0.0.1",
            "DISPUTES_PORT": str(self.service_port),
            "DISPUTES_GATEWAY_PORT": str(self.gateway_port),
            "DISPUTES_WORKER_METRICS_PORT": str(free_port()),
            "DISPUTES_PROJECTOR_METRICS_PORT": str(free_port()),
            "DISPUTES_DELIVERY_METRICS_PORT": str(free_port()),
            "DISPUTES_NOTARY_METRICS_PORT": str(free_port()),
            "DISPUTES_RATE_LIMIT": "10000/second",
            "DISPUTES_THREADS": "8",
            "DISPUTES_WORKER_POLL_SECONDS": "0.5",
            "DISPUTES_SANDBOX": "1",  # for the clock's advance under a kill
        }

    def start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        out = (self.logs / "run.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.run"],
            cwd=self.root,
            env=self.env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        deadline = time.monotonic() + 90
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the stack did not start\n{self.tail()}")
            time.sleep(0.2)

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def service_readiness(self) -> str:
        """The dispute service's own /readyz answer (status code and body)."""
        url = f"http://127.0.0.1:{self.service_port}/readyz"
        try:
            answer = httpx.get(url, timeout=10)
        except httpx.HTTPError as error:
            return type(error).__name__
        return f"{answer.status_code} {answer.text}"

    def child_pid(self, name: str) -> int | None:
        """The pid of the supervisor's child running `name` (None: none runs now)."""
        assert self.process is not None
        module = MODULES[name].encode()
        for path in Path("/proc").glob("[0-9]*/stat"):
            try:
                stat = path.read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) != self.process.pid:
                    continue
                argv = (path.parent / "cmdline").read_bytes().split(b"\0")
            except (OSError, ValueError, IndexError):
                continue
            # `python [-O] -m module ...`: the service runs with -O (services/run.py)
            at = argv.index(b"-m") + 1 if b"-m" in argv[1:3] else 0
            if at and argv[at : at + 1] == [module]:
                return int(path.parent.name)
        return None

    def kill(self, name: str) -> int:
        pid = self.child_pid(name)
        if pid is None:
            raise RuntimeError(f"no {name} running\n{self.tail()}")
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, name: str, old_pid: int, timeout: float = 30.0) -> float:
        """Waits until the supervisor runs `name` again; returns that moment."""
        deadline = time.monotonic() + timeout
        while True:
            pid = self.child_pid(name)
            if pid not in (None, old_pid):
                return time.monotonic()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the {name} was not restarted\n{self.tail()}")
            time.sleep(0.02)

    def token(self, role: str, sub: str) -> str:
        from pydantic import SecretStr

        from services.gateway.auth import mint_token
        from services.gateway.settings import GatewaySettings

        settings = GatewaySettings(  # type: ignore[call-arg]
            _env_file=None,
            environment="test",
            jwt_secret=SecretStr(self.jwt_secret),
            service_token=SecretStr(self.service_token),
        )
        return mint_token(settings, role=role, sub=sub, ttl_seconds=3600)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def tail(self, lines: int = 40) -> str:
        try:
            text = (self.logs / "run.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(text[-lines:])


# The load ----------------------------------------------------------------------------


@dataclass
class Outcome:
    """One command as the client saw it, after all its retries."""

    key: str
    dispute: str
    status: int | None = None  # the final answer (None: gave up)
    errors: Counter[str] = field(default_factory=Counter)  # answers it retried after
    sent_at: float = 0.0
    answered_at: float = 0.0
    longest_wait: float = 0.0  # the slowest single attempt, in seconds


class Load:
    """`clients` threads, each a buyer posting messages to disputes of its own."""

    def __init__(self, stack: Stack, clients: int = 8) -> None:
        self.stack = stack
        self.clients = clients
        self.outcomes: list[Outcome] = []
        self.successes: list[float] = []  # when each 2xx answer arrived (monotonic)
        self.attempts: list[tuple[float, float, str]] = []  # (sent, seconds, answer)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.tokens = {"service": stack.token("service", "orders")}

    def start(self) -> None:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True)
            for n in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(GIVE_UP_SECONDS + REQUEST_TIMEOUT_SECONDS)

    def _client(self, n: int) -> None:
        buyer = f"buyer-{n}-{uuid.uuid4().hex[:6]}"
        token = self.stack.token("buyer", buyer)
        with httpx.Client(base_url=self.stack.url, timeout=REQUEST_TIMEOUT_SECONDS) as http:
            dispute: str | None = None
            posted = 0
            while not self._stop.is_set():
                if dispute is None or posted >= MESSAGES_PER_DISPUTE:
                    dispute = self.open_dispute(http, buyer, token)
                    posted = 0
                    if dispute is None:
                        continue
                self.command(http, token, dispute)
                posted += 1

    def open_dispute(self, http: httpx.Client, buyer: str, token: str) -> str | None:
        order = f"o-{uuid.uuid4().hex[:12]}"
        body = {
            "buyer_id": buyer,
            "seller_id": "seller-1",
            "amount": {"amount": 5000, "currency": "USD"},
            "payment_method": "card",
            "placed_at": "2026-11-20T10:00:00+00:00",
        }
        put = self.send(http, "PUT", f"/v1/orders/{order}", body, self.tokens["service"])
        if put is None or put.status_code >= 300:
            return None
        opened = self.send(
            http,
            "POST",
            "/v1/disputes",
            {
                "order_id": order,
                "reason": "not_received",
                "requested_resolution": "refund_only",
                "amount": {"amount": 5000, "currency": "USD"},
                "description": "never arrived",
            },
            token,
        )
        if opened is None or opened.status_code != 201:
            return None
        return str(opened.json()["id"])

    def command(self, http: httpx.Client, token: str, dispute: str) -> Outcome:
        """Posts one message (its body is its key), retrying with the same key."""
        key = uuid.uuid4().hex
        outcome = Outcome(key=key, dispute=dispute, sent_at=time.monotonic())
        answer = self.send(
            http, "POST", f"/v1/disputes/{dispute}/messages", {"body": key}, token, outcome
        )
        outcome.answered_at = time.monotonic()
        outcome.status = None if answer is None else answer.status_code
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def send(
        self,
        http: httpx.Client,
        method: str,
        path: str,
        body: dict[str, Any],
        token: str,
        outcome: Outcome | None = None,
    ) -> httpx.Response | None:
        """One command, retried with the same Idempotency-Key until a final answer."""
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
        give_up = time.monotonic() + GIVE_UP_SECONDS
        while time.monotonic() < give_up:
            sent = time.monotonic()
            try:
                answer = http.request(method, path, json=body, headers=headers)
                what = str(answer.status_code)
            except httpx.HTTPError as error:
                answer, what = None, type(error).__name__
            took = time.monotonic() - sent
            with self._lock:
                self.attempts.append((sent, took, what))
                if answer is not None and answer.is_success:
                    self.successes.append(time.monotonic())
            if outcome is not None:
                outcome.longest_wait = max(outcome.longest_wait, took)
            if answer is not None and not retryable(answer):
                return answer
            if outcome is not None:
                outcome.errors[what] += 1
            if self._stop.is_set() and outcome is None:
                return None
            time.sleep(RETRY_PAUSE_SECONDS)
        return None

    def first_success_after(self, moment: float) -> float | None:
        with self._lock:
            later = [t for t in self.successes if t >= moment]
        return min(later) if later else None


def retryable(answer: httpx.Response) -> bool:
    if answer.status_code in RETRYABLE:
        return True
    if answer.status_code == 409:
        return str(answer.json().get("type", "")).endswith("/idempotency_in_progress")
    return False


# Checking ----------------------------------------------------------------------------


@dataclass
class Verdict:
    acknowledged: int
    refused: int
    gave_up: int
    lost: list[str]
    duplicated: list[str]
    refused_but_applied: list[str]
    errors: Counter[str]

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.refused_but_applied)


def stored_message_counts(database_url: str) -> Counter[str]:
    """How many stored events carry each message body (a key: 32 hex digits)."""
    counts: Counter[str] = Counter()
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        rows = conn.execute(
            f'SELECT state FROM "{SCHEMA}".disputes_events WHERE topic LIKE %s',
            ("%MessagePosted%",),
        ).fetchall()
    for (state,) in rows:
        text = bytes(state).decode("utf-8", errors="replace")
        marker = '"body":"'
        start = text.find(marker)
        while start != -1:
            body = text[start + len(marker) : start + len(marker) + 32]
            counts[body] += 1
            start = text.find(marker, start + 1)
    return counts


def check(outcomes: list[Outcome], database_url: str) -> Verdict:
    counts = stored_message_counts(database_url)
    acknowledged = [o for o in outcomes if o.status is not None and o.status < 300]
    refused = [o for o in outcomes if o.status is not None and o.status >= 300]
    errors: Counter[str] = Counter()
    for outcome in outcomes:
        errors.update(outcome.errors)
        if outcome.status is not None and outcome.status >= 300:
            errors[str(outcome.status)] += 1
    return Verdict(
        acknowledged=len(acknowledged),
        refused=len(refused),
        gave_up=sum(1 for o in outcomes if o.status is None),
        lost=[o.key for o in acknowledged if counts[o.key] == 0],
        duplicated=[o.key for o in outcomes if counts[o.key] > 1],
        refused_but_applied=[o.key for o in refused if counts[o.key] > 0],
        errors=errors,
    )


# Faults ------------------------------------------------------------------------------


@dataclass
class FaultReport:
    name: str
    verdict: Verdict
    recovered_after: float | None  # seconds from the fault's end to the first success
    longest_wait: float  # the slowest single request attempt during the scenario
    note: str = ""


@contextmanager
def environment(root: Path | None = None) -> Iterator[tuple[Cluster, Stack]]:
    """A cluster and the supervised stack on it, torn down afterwards."""
    cluster = Cluster()
    logs = Path(tempfile.mkdtemp(prefix="faults-logs-"))
    stack = Stack(cluster.url, logs, root)
    try:
        cluster.create()
        stack.start()
        yield cluster, stack
    finally:
        stack.stop()
        cluster.destroy()


def under_load(
    stack: Stack,
    database_url: str,
    name: str,
    fault: Callable[[], float],
    *,
    clients: int = 8,
    warm_seconds: float = 1.5,
    after_seconds: float = 3.0,
) -> FaultReport:
    """Runs the load, injects `fault` (which returns when its end was, monotonic),
    keeps the load running a little, stops it and checks what was stored."""
    load = Load(stack, clients)
    load.start()
    time.sleep(warm_seconds)
    ended = fault()
    deadline = time.monotonic() + 30
    while load.first_success_after(ended) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(after_seconds)
    load.stop()
    first = load.first_success_after(ended)
    return FaultReport(
        name=name,
        verdict=check(load.outcomes, database_url),
        recovered_after=None if first is None else first - ended,
        longest_wait=max((took for _, took, _ in load.attempts), default=0.0),
    )


def kill_process(stack: Stack, database_url: str, name: str) -> FaultReport:
    restarted: list[float] = []

    def fault() -> float:
        old = stack.kill(name)
        restarted.append(stack.wait_restarted(name, old))
        return restarted[0]

    report = under_load(stack, database_url, f"kill -9 {name}", fault)
    report.note = "seconds counted from the supervisor's restart of the process"
    if name in ("service", "gateway"):
        return report
    # Nothing the clients call runs in the worker or the projector: they must be back
    # and working (the projector's list shows every acknowledged dispute).
    report.note = "worker/projector restarted by the supervisor; commands unaffected"
    return report


def restart_postgres(cluster: Cluster, stack: Stack, *, idle: bool) -> FaultReport:
    if not idle:

        def fault() -> float:
            cluster.stop("immediate")
            cluster.start()
            return cluster.wait_accepting()

        return under_load(stack, cluster.url, "PostgreSQL restart -m immediate, under load", fault)
    load = Load(stack, clients=1)
    http = httpx.Client(base_url=stack.url, timeout=REQUEST_TIMEOUT_SECONDS)
    token = stack.token("buyer", "idle-buyer")
    with http:
        dispute = load.open_dispute(http, "idle-buyer", token)
        assert dispute is not None
        time.sleep(2.0)  # idle: every pooled connection unused for a while
        cluster.stop("immediate")
        cluster.start()
        ended = cluster.wait_accepting()
        outcome = load.command(http, token, dispute)
    first = load.first_success_after(ended)
    return FaultReport(
        name="PostgreSQL restart -m immediate, idle",
        verdict=check(load.outcomes, cluster.url),
        recovered_after=None if first is None else first - ended,
        longest_wait=outcome.longest_wait,
        note="first command after the restart: "
        + (f"retried after {dict(outcome.errors)}" if outcome.errors else "succeeded at once"),
    )


def postgres_down(cluster: Cluster, stack: Stack, seconds: float) -> FaultReport:
    readiness: list[str] = []

    def fault() -> float:
        cluster.stop("immediate")
        time.sleep(min(2.0, seconds / 2))
        readiness.append(stack.service_readiness())
        time.sleep(max(0.0, seconds - min(2.0, seconds / 2)))
        cluster.start()
        return cluster.wait_accepting()

    report = under_load(stack, cluster.url, f"PostgreSQL down {seconds:.0f} s", fault)
    report.note = f"the service's /readyz during the outage: {readiness[0]}"
    return report


SANDBOX_ADVANCE = "P6D"
SANDBOX_ADVANCE_SECONDS = 6 * 86400


def kill_during_clock_advance(stack: Stack) -> FaultReport:
    """`kill -9` of the service while it advances the sandbox clock (firing every
    deadline now due), then the retry with the same key: the clock must end exactly one
    advance ahead. Last, since the clock then stays six days ahead."""
    name = f"kill -9 service during a sandbox clock advance of {SANDBOX_ADVANCE}"
    headers = {"Authorization": f"Bearer {stack.token('agent', 'faults-agent')}"}
    with httpx.Client(base_url=stack.url, timeout=REQUEST_TIMEOUT_SECONDS) as http:
        before = http.get("/v1/sandbox/clock", headers=headers)
        if before.status_code != 200:
            verdict = Verdict(0, 0, 0, [], [], [], Counter({str(before.status_code): 1}))
            return FaultReport(name, verdict, None, 0.0, "no GET /v1/sandbox/clock here")
        start = float(before.json()["offset_seconds"])
        key = {**headers, "Idempotency-Key": uuid.uuid4().hex}
        body = {"advance": SANDBOX_ADVANCE}
        errors: Counter[str] = Counter()

        first: list[str] = []

        def first_attempt() -> None:
            with httpx.Client(base_url=stack.url, timeout=REQUEST_TIMEOUT_SECONDS) as own:
                try:
                    first.append(
                        str(own.post("/v1/sandbox/clock", json=body, headers=key).status_code)
                    )
                except httpx.HTTPError as error:
                    first.append(type(error).__name__)

        attempt = threading.Thread(target=first_attempt)
        attempt.start()
        time.sleep(0.5)  # moving: stepping through the due deadlines, firing them
        restarted = stack.wait_restarted("service", stack.kill("service"))
        attempt.join()
        answer: httpx.Response | None = None
        longest = 0.0
        while time.monotonic() < restarted + GIVE_UP_SECONDS:
            sent = time.monotonic()
            try:
                answer = http.post("/v1/sandbox/clock", json=body, headers=key)
            except httpx.HTTPError as error:
                answer = None
                errors[type(error).__name__] += 1
            longest = max(longest, time.monotonic() - sent)
            if answer is not None and not retryable(answer):
                break
            if answer is not None:
                errors[str(answer.status_code)] += 1
            time.sleep(RETRY_PAUSE_SECONDS)
        succeeded = time.monotonic()
        end = float(http.get("/v1/sandbox/clock", headers=headers).json()["offset_seconds"])
    moved = end - start
    ok = answer is not None and answer.status_code == 200
    wrong = [] if abs(moved - SANDBOX_ADVANCE_SECONDS) < 1 else [f"moved {moved / 86400:.3f} days"]
    verdict = Verdict(
        acknowledged=int(ok),
        refused=int(answer is not None and not ok),
        gave_up=int(answer is None),
        lost=wrong if moved < SANDBOX_ADVANCE_SECONDS else [],
        duplicated=wrong if moved > SANDBOX_ADVANCE_SECONDS else [],
        refused_but_applied=[],
        errors=errors,
    )
    if first and first[0] != "200":
        errors[first[0]] += 1
    note = (
        f"the clock moved {moved / 86400:.4f} days for one advance of {SANDBOX_ADVANCE}; "
        f"the attempt the kill cut off answered {first[0] if first else 'nothing'}"
    )
    return FaultReport(name, verdict, succeeded - restarted if ok else None, longest, note)


def run_all(
    root: Path | None = None, *, down_seconds: float = 15.0, rounds: int = 1
) -> list[FaultReport]:
    """Every fault, in one environment, each checked on its own load."""
    reports: list[FaultReport] = []
    with environment(root) as (cluster, stack):
        for _ in range(rounds):
            for name in ("service", "gateway", "worker", "projector"):
                reports.append(kill_process(stack, cluster.url, name))
            reports.append(restart_postgres(cluster, stack, idle=False))
            reports.append(restart_postgres(cluster, stack, idle=True))
            reports.append(postgres_down(cluster, stack, down_seconds))
        reports.append(kill_during_clock_advance(stack))
    return reports
