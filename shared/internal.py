"""The internal hop from the gateway to the dispute service: its development token.

The service accepts `DEV_SERVICE_TOKEN` only in development mode on a loopback address;
`make run` does not even use it (it makes a random token for its children).
"""

from __future__ import annotations

import ipaddress

DEV_SERVICE_TOKEN = "dev-internal-service-token"


def is_loopback(host: str) -> bool:
    """Whether a listening address is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
