"""Where a webhook may be delivered: https to public addresses only, unless the service
runs with `DISPUTES_WEBHOOKS_ALLOW_PRIVATE=1` (development, tests).

Checked when a subscription is created (the caller learns at once), and again before
every attempt (a name may have been pointed at a private address since). Redirects are
never followed, so a public endpoint cannot bounce a delivery inward.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048


class UnsafeDestination(ValueError):
    """The URL may not receive webhooks; `rule` names why (as problems name rules)."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return sorted({str(info[4][0]) for info in infos})


def check_url(url: str, *, allow_private: bool, resolve_names: bool = True) -> None:
    """Raises UnsafeDestination unless `url` may receive webhooks."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeDestination("max_length", f"url must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeDestination("url", "url must be an absolute https:// URL") from None
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed or not parts.hostname:
        raise UnsafeDestination(
            "https", "url must be an absolute https:// URL (plain http:// is refused)"
        )
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestination("no_credentials", "url must not carry a user name or password")
    if parts.fragment:
        raise UnsafeDestination("no_fragment", "url must not have a #fragment")
    if allow_private:
        return
    host = parts.hostname
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [host]
    elif host == "localhost" or host.endswith(".localhost"):
        addresses = ["127.0.0.1"]
    elif not resolve_names:
        return
    else:
        addresses = resolve(host, port or 443)
        if not addresses:
            raise UnsafeDestination("resolvable", f"url's host {host} does not resolve")
    private = [a for a in addresses if not _public(a)]
    if private:
        raise UnsafeDestination(
            "public_address",
            f"url's host {host} is a private, loopback or reserved address ({private[0]}); "
            "webhooks go to public https endpoints only",
        )
