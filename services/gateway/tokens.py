"""Mint a bearer token for development and tests.

    python -m services.gateway.tokens --role buyer --sub buyer-1 [--ttl 3600]

Signs with the gateway's own settings (DISPUTES_JWT_SECRET, issuer, audience), so the
token is accepted by a gateway started in the same environment.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from .auth import ROLES, mint_token
from .settings import load_settings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m services.gateway.tokens", description="Print a bearer token."
    )
    parser.add_argument("--role", required=True, choices=sorted(ROLES))
    parser.add_argument("--sub", required=True, help="the principal id, e.g. buyer-1")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    args = parser.parse_args(argv)
    if args.ttl < 1:
        parser.error("--ttl must be at least 1 second")
    try:
        settings = load_settings()
        token = mint_token(settings, role=args.role, sub=args.sub, ttl_seconds=args.ttl)
    except (ValidationError, ValueError) as exc:
        print(f"cannot mint a token: {exc}", file=sys.stderr)
        return 2
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
