"""The gateway keeps the principal of a verified token until its `exp`, and no longer;
it never keeps a refused one."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from services.gateway import auth
from services.gateway.auth import AuthenticationError, Principal, TokenCache
from services.gateway.settings import GatewaySettings

SECRET = "unit-test-secret-0123456789-abcdefghijklmnop"


def settings() -> GatewaySettings:
    return GatewaySettings(  # type: ignore[call-arg]
        _env_file=None, environment="test", jwt_secret=SecretStr(SECRET),
        service_token=SecretStr("unit-test-service-token-0123"),
    )  # fmt: skip


def token(sub: str = "buyer-1", ttl: int = 600, secret: str = SECRET, **claims: Any) -> str:
    payload = {"sub": sub, "role": "buyer", "exp": int(time.time()) + ttl, **claims}
    return jwt.encode(payload, secret, "HS256")


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every token checked (signature and claims)."""
    seen: list[str] = []
    real = auth.verify_claims

    def counting(token: str, settings: GatewaySettings) -> tuple[Principal, int]:
        seen.append(token)
        return real(token, settings)

    monkeypatch.setattr(auth, "verify_claims", counting)
    return seen


def test_a_token_is_checked_once_until_its_exp(decodes: list[str]) -> None:
    now = [time.time()]
    cache = TokenCache(settings(), clock=lambda: now[0])
    mine = token()
    assert cache.principal(mine) == Principal("buyer-1", "buyer")
    assert cache.principal(mine) == Principal("buyer-1", "buyer")
    assert decodes == [mine]
    exp = jwt.decode(mine, options={"verify_signature": False})["exp"]
    now[0] = exp  # at exp the kept principal is no longer used: the token is checked again
    cache.principal(mine)
    assert decodes == [mine, mine]


def test_a_token_past_its_exp_is_refused_though_it_was_kept() -> None:
    cache = TokenCache(settings())
    short = token(ttl=1)
    assert cache.principal(short).id == "buyer-1"
    exp = jwt.decode(short, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    with pytest.raises(AuthenticationError, match="expired"):
        cache.principal(short)
    assert len(cache) == 0


def test_a_refused_token_is_never_kept(decodes: list[str]) -> None:
    cache = TokenCache(settings())
    forged = token(secret="another-secret-0123456789-abcdefghijklmnop")
    for _ in range(2):
        with pytest.raises(AuthenticationError, match="signature"):
            cache.principal(forged)
    assert decodes == [forged, forged]
    assert len(cache) == 0


def test_the_exact_token_is_the_key() -> None:
    cache = TokenCache(settings())
    mine = token()
    assert cache.principal(mine).id == "buyer-1"
    with pytest.raises(AuthenticationError):
        cache.principal(mine[:-2] + ("AA" if not mine.endswith("AA") else "BB"))


def test_it_holds_at_most_its_size() -> None:
    cache = TokenCache(settings(), size=3)
    for n in range(5):
        cache.principal(token(sub=f"buyer-{n}"))
    assert len(cache) == 3
