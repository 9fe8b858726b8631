"""`python -m services.dispute`: serves the dispute API with uvicorn.

`DISPUTES_PROCESSES` > 1 runs that many server processes on the one port (uvicorn's
workers). The tables are then created once, here, before the workers start, and the
workers share their metrics through prometheus_client's multiprocess directory.
"""

from __future__ import annotations

import os
import sys

import uvicorn
from pydantic import ValidationError

from shared import observability
from shared.config_errors import describe
from shared.ports import ensure_free

from .settings import load_settings
from .startup import check_database


def main() -> int:
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(f"dispute service: bad configuration:\n{describe(exc)}", file=sys.stderr)
        return 2  # `make run` does not restart a child that exits with 2
    observability.setup_logging("dispute", settings)
    check_database(settings, "dispute service")
    ensure_free(settings.host, settings.port, "DISPUTES_PORT")
    if settings.processes > 1:
        observability.enable_multiprocess()  # before the workers import prometheus_client
        if settings.create_tables:
            from services.dispute.application import DisputeApplication
            from shared.clock import SystemClock

            DisputeApplication(
                env=settings.persistence_env(), clock=SystemClock(), policy=settings.policy
            ).close()
            os.environ["DISPUTES_CREATE_TABLES"] = "false"  # read by every worker's settings
    uvicorn.run(
        "services.dispute.api.app:app_from_environment",
        factory=True,
        workers=settings.processes,
        host=settings.host,
        port=settings.port,
        proxy_headers=False,
        server_header=False,
        log_level=settings.log_level.lower(),
        log_config=None,  # the records go through setup_logging's formatter
        access_log=False,  # one access line per request comes from observability.instrument
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
