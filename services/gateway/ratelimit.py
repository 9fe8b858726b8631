"""Rate limiting per principal (its role's limits) and, for requests without valid
credentials, per client address, in a moving window; the limits are `limits` items
(DISPUTES_RATE_LIMIT and the like, parsed by the `limits` library).

In memory by default: each gateway process counts on its own (a count of our own, with
no threads). With DISPUTES_REDIS_URL the count lives in Redis, shared by every gateway
replica. If Redis cannot be reached the request is let through and a warning logged: the
limit protects the service, it must not take the API down with it.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

import limits
import limits.aio.strategies
import redis.asyncio
from limits.aio.storage import RedisStorage

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
    """One process's count: the same moving window as `limits`' (a hit is refused while
    the window already holds `amount` hits; the wait is until the oldest leaves it), kept
    in a deque of hit times per limit and key. No threads: `limits`' MemoryStorage starts
    a timer thread whenever its last one has ended, which under load is about every
    request and cost the gateway about a fifth of its CPU. Old hits leave a key's deque
    when it is hit again; keys left idle are swept at most once a second."""

    SWEEP_SECONDS = 1.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._hits: dict[tuple[int, int, str], deque[float]] = {}
        self._next_sweep = 0.0

    async def retry_after(self, key: str, items: list[limits.RateLimitItem]) -> int | None:
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        for item in items:
            window = item.get_expiry()
            hits = self._hits.setdefault((item.amount, window, key), deque())
            while hits and hits[0] < now - window:
                hits.popleft()
            if len(hits) >= item.amount:
                return max(1, math.ceil(hits[0] + window - now))
            hits.append(now)
        return None

    def _sweep(self, now: float) -> None:
        idle = [k for k, hits in self._hits.items() if not hits or hits[-1] < now - k[1]]
        for k in idle:
            del self._hits[k]
        self._next_sweep = now + self.SWEEP_SECONDS

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
