"""`python -m services.gateway`: serves the public API with uvicorn."""

from __future__ import annotations

import sys

import uvicorn
from pydantic import ValidationError

from shared import observability, tracing
from shared.config_errors import describe
from shared.ports import ensure_free

from .app import create_app
from .settings import load_settings


def main() -> int:
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(f"gateway: bad configuration:\n{describe(exc)}", file=sys.stderr)
        return 2
    observability.setup_logging("gateway", settings)
    tracing.setup_tracing("gateway")  # OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set
    ensure_free(settings.gateway_host, settings.gateway_port, "DISPUTES_GATEWAY_PORT")
    uvicorn.run(
        create_app(settings),
        host=settings.gateway_host,
        port=settings.gateway_port,
        proxy_headers=False,
        server_header=False,
        log_level=settings.log_level.lower(),
        log_config=None,  # the records go through setup_logging's formatter
        access_log=False,  # one access line per request comes from observability.instrument
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
