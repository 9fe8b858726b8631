"""The gateway's in-memory rate count: `limits`' moving window, without its timer threads."""

from __future__ import annotations

import asyncio
import threading

import limits

from services.gateway.ratelimit import MemoryRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hits(limiter: MemoryRateLimiter, key: str, spec: str, n: int) -> list[int | None]:
    items = limits.parse_many(spec)
    return [asyncio.run(limiter.retry_after(key, items)) for _ in range(n)]


def test_refuses_the_hit_over_the_limit_until_the_oldest_leaves_the_window() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    for _ in range(3):  # at 1000, 1010 and 1020
        assert hits(limiter, "buyer:b", "3/minute", 1) == [None]
        clock.now += 10
    clock.now += 10
    assert hits(limiter, "buyer:b", "3/minute", 1) == [20]  # the first leaves at 1060
    clock.now += 19.5
    assert hits(limiter, "buyer:b", "3/minute", 1) == [1]  # never less than a second
    clock.now += 1
    # The first has left; the refusals were not counted; the next leaves at 1070.
    assert hits(limiter, "buyer:b", "3/minute", 2) == [None, 10]


def test_each_key_and_each_limit_counts_on_its_own() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    assert hits(limiter, "buyer:a", "2/second;3/minute", 3) == [None, None, 1]
    assert hits(limiter, "buyer:other", "2/second;3/minute", 1) == [None]
    clock.now += 1.5
    # The second second's first hit passes; its next is refused by the minute's count.
    assert hits(limiter, "buyer:a", "2/second;3/minute", 2) == [None, 59]


def test_idle_keys_are_forgotten_and_no_thread_is_started() -> None:
    clock = Clock()
    limiter = MemoryRateLimiter(clock)
    threads = threading.active_count()
    for n in range(200):
        hits(limiter, f"anonymous@{n}", "20/second", 1)
    assert threading.active_count() == threads
    clock.now += 5
    hits(limiter, "buyer:late", "20/second", 1)
    assert hits(limiter, "anonymous@1", "1/second", 1) == [None]
    assert len(limiter._hits) == 2  # the 199 others were swept
