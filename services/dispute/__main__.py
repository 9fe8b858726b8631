"""`python -m services.dispute`: serves the dispute API with uvicorn.

`DISPUTES_PROCESSES` > 1 runs that many server processes on the one port (uvicorn's
workers). The tables are then created once, here, before the workers start.
"""

from __future__ import annotations

import logging
import os
import sys

import uvicorn
from pydantic import ValidationError

from services.dispute.application import DisputeApplication
from shared.clock import SystemClock

from .settings import load_settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        settings = load_settings()
    except ValidationError as exc:
        print(f"dispute service: bad configuration:\n{exc}", file=sys.stderr)
        return 2  # `make run` does not restart a child that exits with 2
    if settings.processes > 1 and settings.create_tables:
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
        log_level="info",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
