"""Logs and metrics for every process of the system, each set up in one call.

- `setup_logging("worker")`: one structured format for the process (structlog over the
  standard library, so the lines of uvicorn, eventsourcing and every `logging` logger come
  out the same way): JSON lines when `DISPUTES_LOG_FORMAT=json` (the default in
  production), readable `key=value` lines otherwise; each line has the time, `process`,
  `level`, `logger` and, where there is one, `request_id` and `dispute_id`.
- `instrument(app, "gateway")`: an ASGI app's request metrics (by route and status), ONE
  access log line per request, the request id and dispute id bound to every line logged
  while the request runs, and `GET /metrics` on the app's own port.
- `serve_metrics(port, "DISPUTES_WORKER_METRICS_PORT")`: `/metrics` on a port of its own,
  for processes without an HTTP API (the worker, the projector, any new follower).

Several server processes on one port (`DISPUTES_PROCESSES` > 1) share their metrics
through prometheus_client's multiprocess mode: `enable_multiprocess()` in the parent,
before the workers start, points them at one directory; `/metrics` then sums (or, for
gauges, labels by pid) what every process wrote there.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, TextIO

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    start_http_server,
)
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.ports import refuse
from shared.tracing import TraceMiddleware

__all__ = [
    "LogSettings",
    "ObservabilityMiddleware",
    "bind",
    "enable_multiprocess",
    "gauge",
    "instrument",
    "metrics_response",
    "serve_metrics",
    "setup_logging",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LogFormat = Literal["json", "console"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class LogSettings(BaseSettings):
    """The logging variables every process reads (a base of each service's settings)."""

    model_config = SettingsConfigDict(env_prefix="DISPUTES_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    # json | console; unset: json in production, console elsewhere.
    log_format: LogFormat | None = None
    log_level: LogLevel = "INFO"

    @property
    def log_json(self) -> bool:
        if self.log_format is None:
            return self.environment == "production"
        return self.log_format == "json"


# Logging ---------------------------------------------------------------------------------


def _drop_color_message(_logger: Any, _method: str, event: Any) -> Any:
    event.pop("color_message", None)  # uvicorn's copy of the message with ANSI colours
    return event


def _process_adder(process: str) -> Callable[[Any, str, Any], Any]:
    def add_process(_logger: Any, _method: str, event: Any) -> Any:
        event.setdefault("process", process)
        event.setdefault("pid", os.getpid())
        return event

    return add_process


def setup_logging(
    process: str, settings: LogSettings | None = None, stream: TextIO | None = None
) -> None:
    """Routes every log record of this process through one structlog formatter.

    `process` names the process on every line (gateway, dispute, worker, projector...);
    `settings` defaults to the environment's (`DISPUTES_LOG_FORMAT`, `DISPUTES_LOG_LEVEL`).
    Safe to call again (tests, uvicorn's worker processes): it replaces the handler.
    Lines go to `stream`, default standard error.
    """
    settings = settings or LogSettings()
    pre_chain: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        _drop_color_message,
        _process_adder(process),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if settings.log_json:
        renderer = structlog.processors.JSONRenderer()
        final: list[Any] = [structlog.processors.format_exc_info, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        final = [renderer]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *final],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level)
    # uvicorn's loggers: no handlers of their own, through the root's formatter. Its
    # access log stays off (`access_log=False`): `instrument` writes one line per request.
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # Closed here too, not only by `access_log=False`: uvicorn's workers call this again
    # from the app factory, after uvicorn configured its loggers, and an access logger
    # that propagates to the root would write a second line per request.
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False
    structlog.configure(
        processors=[*pre_chain, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def bind(**values: Any) -> None:
    """Adds fields (e.g. `dispute_id=`) to every line logged from here on in this context
    (a request's task, a worker's round)."""
    structlog.contextvars.bind_contextvars(**values)


# Metrics -----------------------------------------------------------------------------------


def enable_multiprocess() -> str:
    """Called by a parent process before it starts several server processes: gives them
    one fresh directory for their metrics (kept if the environment already names one)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory, exist_ok=True)
    else:
        directory = tempfile.mkdtemp(prefix="disputes-metrics-")
        os.environ[MULTIPROC_ENV] = directory
    return directory


def multiprocess_mode() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


def gauge(
    name: str, documentation: str, labelnames: Iterable[str] = (), mode: str = "max"
) -> Gauge:
    """A gauge that also works in multiprocess mode (`mode`: how the processes' values
    combine: max, min, sum, livesum, mostrecent...)."""
    return Gauge(name, documentation, labelnames, multiprocess_mode=mode)  # type: ignore[arg-type]


def metrics_response() -> tuple[bytes, str]:
    """The exposition text of this process (or of all server processes on its port)."""
    if multiprocess_mode():
        registry = CollectorRegistry()
        # prometheus_client leaves the collector's constructor unannotated.
        collect: Callable[[CollectorRegistry], object] = multiprocess.MultiProcessCollector
        collect(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def serve_metrics(host: str, port: int | None, variable: str) -> None:
    """`/metrics` on `port` in a background thread (None or 0: not served). A port in use
    stops the process with a message naming `variable`."""
    if not port:
        return
    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        refuse(
            f"cannot serve metrics on {host}:{port} ({exc.strerror}): another process holds "
            f"the port; set {variable} to a free port (or 0 to serve none)"
        )
    logging.getLogger("shared.observability").info("metrics on http://%s:%d/metrics", host, port)


REQUESTS = Counter(
    "disputes_http_requests_total",
    "HTTP requests answered, by tier, method, route template and status",
    ["tier", "method", "route", "status"],
)
LATENCY = Histogram(
    "disputes_http_request_duration_seconds",
    "Time from a request's arrival to the end of its answer, by tier, method, route, status",
    ["tier", "method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
IN_FLIGHT = gauge(
    "disputes_http_requests_in_flight", "Requests being served now, by tier", ["tier"], "livesum"
)

# Paths that name a dispute: its id goes on every line the request logs.
_DISPUTE_PATH = re.compile(r"^/v1/disputes/([^/]+)")
_QUIET_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})


class ObservabilityMiddleware:
    """Per request: binds request_id (from RequestIdMiddleware, which must wrap this one)
    and dispute_id to the logging context, counts it by route template and status, and
    writes one access line (health checks and scrapes at DEBUG)."""

    def __init__(self, app: ASGIApp, tier: str) -> None:
        self.app = app
        self.tier = tier
        self.log = logging.getLogger("access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope.get("path", "")
        request_id = scope.get("state", {}).get("request_id")
        structlog.contextvars.clear_contextvars()
        fields: dict[str, Any] = {"request_id": request_id}
        if (match := _DISPUTE_PATH.match(path)) is not None:
            fields["dispute_id"] = match.group(1)
        structlog.contextvars.bind_contextvars(**fields)
        status = 500
        gauge_ = IN_FLIGHT.labels(self.tier)
        gauge_.inc()

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            gauge_.dec()
            seconds = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            labels = (self.tier, method, template, str(status))
            REQUESTS.labels(*labels).inc()
            LATENCY.labels(*labels).observe(seconds)
            level = logging.DEBUG if path in _QUIET_PATHS else logging.INFO
            fields = {
                "method": method,
                "path": path,
                "route": template,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "client": (scope.get("client") or ("", 0))[0],
            }
            self.log.log(level, "request", extra=fields)


async def _metrics_endpoint(_request: Request) -> Response:
    body, media_type = metrics_response()
    return Response(body, media_type=media_type)


def instrument(app: Any, tier: str, *, originate_traces: bool = False) -> None:
    """Adds the request metrics and access log, W3C trace context (and spans, when
    tracing is on: `shared.tracing`), and `GET /metrics`, to a FastAPI app. Call it before
    adding RequestIdMiddleware (which must run first, outside these). `originate_traces`:
    a request without a valid traceparent starts a trace here (the public entry)."""
    app.add_route("/metrics", _metrics_endpoint, methods=["GET"], include_in_schema=False)
    app.add_middleware(TraceMiddleware, originate=originate_traces)
    app.add_middleware(ObservabilityMiddleware, tier=tier)
