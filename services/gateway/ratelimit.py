"""Rate limiting per principal (its role's limits) and, for requests without valid
credentials, per client address; with the `limits` library (moving window).

In memory by default: each gateway process counts on its own. With DISPUTES_REDIS_URL
the count lives in Redis, shared by every gateway replica. If Redis cannot be reached the
request is let through and a warning logged: the limit protects the service, it must not
take the API down with it.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Protocol

import limits
import limits.aio.strategies
import limits.strategies
import redis.asyncio
from limits.aio.storage import RedisStorage
from limits.storage import MemoryStorage

from .auth import Principal

log = logging.getLogger("services.gateway")


class RateLimiter(Protocol):
    async def retry_after(self, key: str, items: list[limits.RateLimitItem]) -> int | None:
        """Counts one request under `key`; None if it may go on, else the seconds to wait."""
        ...

    async def close(self) -> None: ...


def principal_key(principal: Principal) -> str:
    return f"{principal.role}:{principal.id}"


def address_key(address: str) -> str:
    """Requests without valid credentials count per client address."""
    return f"anonymous@{address}"


def _seconds_until(reset_time: float) -> int:
    return max(1, math.ceil(reset_time - time.time()))


class MemoryRateLimiter:
    """One process's count. Cheap, synchronous calls: fine on the event loop."""

    def __init__(self) -> None:
        self._limiter = limits.strategies.MovingWindowRateLimiter(MemoryStorage())

    async def retry_after(self, key: str, items: list[limits.RateLimitItem]) -> int | None:
        for item in items:
            if not self._limiter.hit(item, key):
                return _seconds_until(self._limiter.get_window_stats(item, key).reset_time)
        return None

    async def close(self) -> None:
        return None


class RedisRateLimiter:
    """A count shared by every gateway that uses the same Redis."""

    def __init__(self, url: str, key_prefix: str) -> None:
        self._pool = redis.asyncio.ConnectionPool.from_url(
            url, socket_connect_timeout=1, socket_timeout=1
        )
        storage = RedisStorage(
            "async+" + url,
            implementation="redispy",
            key_prefix=key_prefix,
            connection_pool=self._pool,  # type: ignore[arg-type]  # passed to redis-py
        )
        self._limiter = limits.aio.strategies.MovingWindowRateLimiter(storage)

    async def retry_after(self, key: str, items: list[limits.RateLimitItem]) -> int | None:
        try:
            for item in items:
                if not await self._limiter.hit(item, key):
                    stats = await self._limiter.get_window_stats(item, key)
                    return _seconds_until(stats.reset_time)
        except (redis.RedisError, OSError) as exc:
            log.warning("rate limit not applied, Redis unavailable: %s", exc)
        return None

    async def close(self) -> None:
        await self._pool.aclose()


def make_rate_limiter(redis_url: str | None, key_prefix: str = "disputes-gw") -> RateLimiter:
    if redis_url is None:
        return MemoryRateLimiter()
    return RedisRateLimiter(redis_url, key_prefix)
