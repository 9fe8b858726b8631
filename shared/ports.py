"""Refusing to start on a port another process holds, with a message naming the variable
that chooses it (rather than uvicorn's bare "address already in use", or worse, a
launcher that finds another copy of the stack answering there)."""

from __future__ import annotations

import socket
import sys
from typing import NoReturn

BAD_CONFIGURATION = 2  # the exit status `make run` does not restart a child for


def refuse(message: str) -> NoReturn:
    """Stops the process with one line on standard error and status 2 (bad configuration:
    starting it again as it is cannot help)."""
    print(message, file=sys.stderr, flush=True)
    raise SystemExit(BAD_CONFIGURATION)


def ensure_free(host: str, port: int, variable: str) -> None:
    """Stops the process (`refuse`) naming `variable` if `host:port` cannot be bound now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As uvicorn binds: SO_REUSEADDR, so a port in TIME_WAIT does not count as busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            refuse(
                f"cannot listen on {host}:{port}: {exc.strerror} (another process, perhaps "
                f"another copy of this stack, holds it); set {variable} to a free port"
            )
