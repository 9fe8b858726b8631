"""Bearer tokens: HS256 JWTs carrying `sub` (the principal id), `role` and `exp`.

Only HS256 is accepted (an explicit allow-list: `alg: none` and every other algorithm
are refused), `exp` is required, and the issuer and audience are checked when they are
configured. Minting lives here too, so the CLI and the tests make exactly what the
gateway checks.

`TokenCache` keeps the principal of each token it verified, keyed by the exact token,
until the token's `exp`: a client sends the same token with every request, and checking
its signature and claims again each time cost about a tenth of the gateway's CPU. A
token refused is never kept; one past its `exp` is checked again (and so refused).
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

import jwt

from shared.contract import Role

from .settings import GatewaySettings

ALGORITHMS = ["HS256"]
ROLES: frozenset[str] = frozenset(get_args(Role))
# The principal id travels in a header to the dispute service and into every event.
_SUB = re.compile(r"^[A-Za-z0-9._:@\-]{1,128}$")


@dataclass(frozen=True)
class Principal:
    id: str
    role: str


class AuthenticationError(Exception):
    """No usable credentials; the message says what to fix (401)."""


def principal_from_header(
    authorization: str | None, settings: GatewaySettings, cache: TokenCache | None = None
) -> Principal:
    if not authorization:
        raise AuthenticationError("send Authorization: Bearer <token>")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthenticationError("the Authorization header must be 'Bearer <token>'")
    if cache is not None:
        return cache.principal(token)
    return verify_token(token, settings)


class TokenCache:
    """The principals of verified tokens until each one's `exp`; at most `size` of them
    (the oldest verified leaves first). `clock` is the wall clock `exp` is read against."""

    def __init__(
        self, settings: GatewaySettings, size: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._size = size
        self._clock = clock
        self._verified: OrderedDict[str, tuple[Principal, int]] = OrderedDict()

    def principal(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            if self._clock() < known[1]:
                return known[0]
            del self._verified[token]
        principal, exp = verify_claims(token, self._settings)
        self._verified[token] = (principal, exp)
        if len(self._verified) > self._size:
            self._verified.popitem(last=False)
        return principal

    def __len__(self) -> int:
        return len(self._verified)


def verify_token(token: str, settings: GatewaySettings) -> Principal:
    return verify_claims(token, settings)[0]


def verify_claims(token: str, settings: GatewaySettings) -> tuple[Principal, int]:
    """The token's principal and its `exp`, or AuthenticationError saying what is wrong."""
    try:
        claims = jwt.decode(
            token,
            settings.jwt_key,
            algorithms=ALGORITHMS,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway=settings.jwt_leeway_seconds,
            options={
                "require": ["exp", "sub", "role"],
                "verify_iss": settings.jwt_issuer is not None,
                "verify_aud": settings.jwt_audience is not None,
            },
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("the token has expired: mint a new one") from None
    except jwt.MissingRequiredClaimError as exc:
        raise AuthenticationError(f"the token lacks the {exc.claim!r} claim") from None
    except jwt.InvalidAlgorithmError:
        raise AuthenticationError(f"the token must be signed with {ALGORITHMS[0]}") from None
    except jwt.InvalidSignatureError:
        raise AuthenticationError("the token's signature does not verify") from None
    except jwt.InvalidIssuerError:
        raise AuthenticationError("the token's issuer is not accepted") from None
    except jwt.InvalidAudienceError:
        raise AuthenticationError("the token's audience is not accepted") from None
    except jwt.InvalidTokenError as exc:
        raise AuthenticationError(f"the token is not valid: {exc}") from None
    check_times(claims, settings)
    role, sub = claims.get("role"), claims.get("sub")
    if not isinstance(role, str) or role not in ROLES:
        raise AuthenticationError("the token's role must be one of " + ", ".join(sorted(ROLES)))
    if not isinstance(sub, str) or not _SUB.fullmatch(sub):
        raise AuthenticationError("the token's sub must be 1 to 128 letters, digits or . _ : @ -")
    exp = claims["exp"]  # check_times made sure it is a whole number
    return Principal(id=sub, role=role), exp


def check_times(claims: dict[str, object], settings: GatewaySettings) -> None:
    """`exp` (and `iat`, `nbf` when present) are whole seconds since the epoch, and `exp`
    is at most `jwt_max_ttl_seconds` ahead: a string, a float or 1e308 is refused (PyJWT
    reads "123" and 1e308 as times), and so is a token that would never expire."""
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name)
        if name in claims and (not isinstance(value, int) or isinstance(value, bool)):
            raise AuthenticationError(f"the token's {name!r} must be a whole number of seconds")
    exp = claims["exp"]
    assert isinstance(exp, int)
    if exp > time.time() + settings.jwt_max_ttl_seconds + settings.jwt_leeway_seconds:
        raise AuthenticationError(
            f"the token's 'exp' is more than {settings.jwt_max_ttl_seconds} s ahead: "
            "mint a shorter-lived token"
        )


def mint_token(settings: GatewaySettings, *, role: str, sub: str, ttl_seconds: int = 3600) -> str:
    """A token the gateway configured by `settings` accepts (for development and tests)."""
    if role not in ROLES:
        raise ValueError("role must be one of " + ", ".join(sorted(ROLES)))
    if not _SUB.fullmatch(sub):
        raise ValueError("sub must be 1 to 128 letters, digits or . _ : @ -")
    now = int(time.time())
    claims: dict[str, object] = {"sub": sub, "role": role, "iat": now, "exp": now + ttl_seconds}
    if settings.jwt_issuer is not None:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience is not None:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_key, algorithm=ALGORITHMS[0])
