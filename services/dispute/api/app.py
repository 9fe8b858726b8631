"""The app factory: wiring only, nothing done at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from services.dispute.application import DisputeApplication
from services.dispute.delivery.store import WebhookStore
from services.dispute.metrics import Sampler, sample_pool
from services.dispute.operations import Operations
from services.dispute.scheduler import ClockStore, DeadlineScheduler, ServiceClock
from services.dispute.settings import Settings, load_settings
from shared import observability, tracing
from shared.clock import Clock, SystemClock
from shared.request_id import RequestIdMiddleware

from . import problems
from .audit_routes import audit_router
from .dashboard_routes import dashboard
from .routes import SandboxTime, health, router
from .webhook_routes import webhooks_router

log = logging.getLogger("services.dispute.api")


def make_clock(settings: Settings) -> Clock:
    """The real clock; in the sandbox, real time plus the persisted offset that the
    sandbox endpoint moves (re-read every second: a worker or replica may move it too)."""
    if not settings.sandbox:
        return SystemClock()
    return ServiceClock(refresh_seconds=1.0)


def sandbox_time(application: DisputeApplication) -> SandboxTime:
    """The sandbox's clock store and deadline scheduler, on the application's store."""
    clock = application.clock
    assert isinstance(clock, ServiceClock)
    store = ClockStore(application)
    clock.bind(store)
    return SandboxTime(clock, store, DeadlineScheduler(application, clock))


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # One worker thread per pooled connection (settings.persistence_env sizes the pool).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        application = await anyio.to_thread.run_sync(
            lambda: DisputeApplication(
                env=settings.persistence_env(),
                clock=make_clock(settings),
                policy=settings.policy,
                cached_disputes=settings.cached_disputes,
                snapshot_interval=settings.snapshot_interval,
            )
        )
        app.state.application = application
        app.state.operations = Operations(application)
        app.state.webhooks = await anyio.to_thread.run_sync(
            lambda: WebhookStore(application, create=settings.create_tables)
        )
        if settings.sandbox:
            app.state.sandbox = await anyio.to_thread.run_sync(sandbox_time, application)
        sampler = Sampler(lambda: sample_pool(application)).start()
        try:
            yield
        finally:
            sampler.stop()
            application.close()

    app = FastAPIOffline(  # Swagger UI and ReDoc from the pinned package, no CDN
        docs_url="/docs",
        redoc_url="/redoc",
        static_url="/docs-assets",
        title="Disputes (internal dispute service)",
        version="1",
        description="The dispute service behind the gateway: the public API's paths, "
        "authenticated by the gateway's internal token.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    problems.install(app)
    observability.instrument(app, "dispute")
    app.add_middleware(RequestIdMiddleware)
    app.include_router(router)
    app.include_router(dashboard)
    app.include_router(audit_router)
    app.include_router(webhooks_router)
    app.include_router(health)
    return app


def app_from_environment() -> FastAPI:
    """The app for this process's settings: uvicorn's factory, in each worker process."""
    settings = load_settings()
    observability.setup_logging("dispute", settings)
    tracing.setup_tracing("dispute")  # OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set
    return create_app(settings)
