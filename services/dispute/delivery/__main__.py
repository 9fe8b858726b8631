"""The delivery process: `python -m services.dispute.delivery`.

Delivers webhooks (services.dispute.delivery.webhooks) and, when `DISPUTES_NATS_URL` is
set, publishes every event to NATS JetStream (services.dispute.delivery.jetstream). Its
configuration is the service's (`services.dispute.settings`: the same store, the
`DISPUTES_WEBHOOKS_*` and `DISPUTES_NATS_*` variables). Run as many replicas as you like:
each subscription is claimed by one of them at a time, and the JetStream relay runs in
one of them at a time. SIGINT or SIGTERM stops it after the deliveries in flight.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from pydantic import ValidationError

from services.dispute.metrics import Sampler, sample_delivery, sample_pool
from services.dispute.sandbox_clock import ServiceClock
from services.dispute.settings import load_settings
from services.dispute.startup import check_database
from services.dispute.worker import _start_application
from shared import observability
from shared.config_errors import describe

from .store import WebhookStore
from .webhooks import Deliverer

log = logging.getLogger("services.dispute.delivery")


def main() -> int:
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(f"delivery process: bad configuration:\n{describe(exc)}", file=sys.stderr)
        return 2  # `make run` does not restart a child that exits with 2
    observability.setup_logging("delivery", settings)
    # The deliveries log is the record of attempts (GET /v1/webhooks/{id}/deliveries);
    # failures are logged by the deliverer, so urllib3's per-connection lines are not.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    check_database(settings, "delivery process")
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info(
            "received %s: stopping after the deliveries in flight", signal.Signals(signum).name
        )
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    # Connections: one per delivery thread, one for the relay, one spare (not the
    # service's DISPUTES_THREADS, sized for its request threads).
    pool = settings.webhooks_concurrency + 2
    app = _start_application(settings.model_copy(update={"threads": pool}), ServiceClock(), stop)
    if app is None:
        return 1
    observability.serve_metrics(
        settings.host, settings.delivery_metrics_port, "DISPUTES_DELIVERY_METRICS_PORT"
    )
    threads: list[threading.Thread] = []
    store = WebhookStore(app, create=settings.create_tables)

    def sample() -> None:
        sample_delivery(app, store)
        sample_pool(app)

    sampler = Sampler(sample).start()
    deliverer = Deliverer(
        app,
        store,
        allow_private=settings.webhooks_allow_private,
        schedule=settings.webhooks_retry_schedule,
        timeout=settings.webhooks_timeout_seconds,
        lease=settings.webhooks_lease_seconds,
        concurrency=settings.webhooks_concurrency,
        poll=settings.webhooks_poll_seconds,
    )
    try:
        threads.append(threading.Thread(target=deliverer.run_forever, args=(stop,)))
        if settings.nats_url is not None:
            from .jetstream import JetStreamRelay  # only with NATS configured

            relay = JetStreamRelay(
                app,
                settings.nats_url,
                stream=settings.nats_stream,
                subject_prefix=settings.nats_subject_prefix,
                lease=settings.webhooks_lease_seconds,
                poll=settings.webhooks_poll_seconds,
            )
            threads.append(threading.Thread(target=relay.run_forever, args=(stop,)))
        log.info(
            "delivery process started (webhooks: %d at once, retries %s s; JetStream: %s)",
            settings.webhooks_concurrency,
            ", ".join(f"{s:g}" for s in settings.webhooks_retry_schedule),
            f"stream {settings.nats_stream}" if settings.nats_url else "off",
        )
        for thread in threads:
            thread.start()
        while not stop.is_set():
            if not all(t.is_alive() for t in threads):
                log.error("a delivery thread ended unexpectedly; stopping")
                stop.set()
                return 1
            stop.wait(0.5)
        for thread in threads:
            thread.join()
    finally:
        sampler.stop()
        deliverer.close()
        app.close()
    log.info("delivery process stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
