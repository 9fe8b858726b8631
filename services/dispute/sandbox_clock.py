"""The sandbox clock: real UTC time plus an offset that only moves forward, and moving it.

- `ClockStore` keeps the offset in the events' own database (table
  `dispute_sandbox_clock`, through the backend's `SandboxClockRecorder`), so it survives
  restarts and every process of a deployment sees the same time.
- `ServiceClock` is the base clock (real UTC time) plus that offset.
- `advance_clock` moves the sandbox clock forward and returns once every time-out now
  due has fired, stepping through the due times in order, like Stripe's test clocks.
  Its target is fixed per idempotency key first (`dispute_sandbox_clock_advances`), so
  a retried advance finishes the same move rather than doubling it.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.clock import Clock, SystemClock

from .infrastructure.backend import recorders_of
from .infrastructure.clock import ADVANCES_TABLE, CLOCK_NAME, CLOCK_TABLE

if TYPE_CHECKING:
    from .scheduler import DeadlineScheduler

__all__ = [
    "ADVANCES_TABLE",
    "CLOCK_NAME",
    "CLOCK_TABLE",
    "ClockStore",
    "ServiceClock",
    "advance_clock",
]

ADVANCES_KEPT_SECONDS = 48 * 3600  # as long as idempotency keys


def _offset_us(offset: timedelta) -> int:
    return (offset.days * 86_400 + offset.seconds) * 1_000_000 + offset.microseconds


class ClockStore:
    """The sandbox clock's offset, persisted in the events' database (survives restarts).

    `ClockStore(app)` or `ClockStore(datastore)` (`app.recorder.datastore`). The table is
    created idempotently on construction. The offset only ever moves forward.
    """

    def __init__(self, app_or_datastore: Any) -> None:
        self.recorder = recorders_of(app_or_datastore).sandbox_clock_recorder()
        self.recorder.create_tables()

    def advance_target(self, request: str | None, duration: timedelta) -> timedelta:
        """The offset that advancing by `duration` moves the clock to: the stored offset
        plus `duration`, fixed in one transaction by the first attempt of `request` (an
        idempotency key). A retry of the request, after a crash halfway through the
        move, gets the same target, so it finishes the move instead of doubling it.
        Without a request, each call is a new move."""
        if request is None:
            return self.load() + duration
        now = time.time()
        target = self.recorder.advance_target(
            request, _offset_us(duration), now, now - ADVANCES_KEPT_SECONDS
        )
        return timedelta(microseconds=target)

    def load(self) -> timedelta:
        """The stored offset (zero if never moved)."""
        stored = self.recorder.load()
        return timedelta(microseconds=stored) if stored else timedelta(0)

    def save(self, offset: timedelta) -> timedelta:
        """Stores `offset` unless a larger one is stored already (the clock never goes
        back, also when two processes move it at once); returns the offset now stored.

        Raises ValueError for a negative offset.
        """
        if offset < timedelta(0):
            raise ValueError("the sandbox clock's offset cannot be negative")
        return timedelta(microseconds=self.recorder.save(_offset_us(offset)))


class ServiceClock:
    """The service's clock (a `shared.clock.Clock`): the base clock (real UTC time by
    default) plus the sandbox offset from a `ClockStore`.

    Constructible before the application exists (it takes the clock in its constructor);
    `bind(store)` afterwards loads the stored offset. Unbound, the offset is zero.
    `refresh()` re-reads the offset (another process may have moved it); with
    `refresh_seconds`, `now()` also re-reads it when the last read is older than that.
    """

    def __init__(
        self,
        base: Clock | None = None,
        store: ClockStore | None = None,
        *,
        refresh_seconds: float | None = None,
    ) -> None:
        self._base = base or SystemClock()
        self._store: ClockStore | None = None
        self._offset = timedelta(0)
        self._refresh_seconds = refresh_seconds
        self._loaded_at = 0.0
        self._lock = threading.Lock()
        if store is not None:
            self.bind(store)

    @property
    def base(self) -> Clock:
        return self._base

    @property
    def store(self) -> ClockStore | None:
        return self._store

    @property
    def offset(self) -> timedelta:
        return self._offset

    def bind(self, store: ClockStore) -> None:
        """Uses `store` from now on, and loads its offset."""
        self._store = store
        self.refresh()

    def refresh(self) -> timedelta:
        """Re-reads the stored offset (never moving back); returns the offset in use."""
        if self._store is None:
            return self._offset
        stored = self._store.load()
        self._set(stored)
        return self._offset

    def _set(self, offset: timedelta) -> None:
        with self._lock:
            self._offset = max(self._offset, offset)
            self._loaded_at = time.monotonic()

    def now(self) -> datetime:
        if (
            self._refresh_seconds is not None
            and self._store is not None
            and time.monotonic() - self._loaded_at >= self._refresh_seconds
        ):
            self.refresh()
        return self._base.now() + self._offset

    def move_to(self, offset: timedelta) -> timedelta:
        """Persists `offset` (never backwards) and uses it; returns the offset in use."""
        if self._store is None:
            raise RuntimeError("ServiceClock is not bound to a ClockStore")
        self._set(self._store.save(offset))
        return self._offset


def advance_clock(
    clock: ServiceClock,
    store: ClockStore,
    scheduler: DeadlineScheduler,
    duration: timedelta,
    *,
    request: str | None = None,
    timeout_seconds: float = 60.0,
) -> datetime:
    """Moves the sandbox clock forward by `duration` and returns the new now once every
    time-out now due has fired.

    The move's target offset is fixed first, in one transaction, per `request` (the
    caller's idempotency key: `ClockStore.advance_target`), so a retry after a crash
    halfway finishes the same move and never advances twice. Time then moves in steps
    through the due times in order, so a time-out that starts a new deadline falls due
    at the right moment too (advancing 30 days runs a case through several lapses). The
    offset is persisted at each step (never backwards). Raises ValueError for a negative
    duration, TimeoutError if time-outs claimed by another replica are still unfired
    after `timeout_seconds`.
    """
    if duration < timedelta(0):
        raise ValueError("the clock only moves forward")
    if clock.store is not store:
        clock.bind(store)
    else:
        clock.refresh()
    target_offset = store.advance_target(request, duration)
    deadline = time.monotonic() + timeout_seconds

    def settle_at(limit_to: datetime) -> None:
        # Sync and fire until nothing is due at the clock's now (<= limit_to's step).
        while True:
            scheduler.sync()
            if scheduler.count_due() == 0:
                return
            fired = scheduler.fire_due()
            scheduler.sync()
            if fired == 0 and scheduler.count_due() > 0:
                if time.monotonic() > deadline:
                    raise TimeoutError("time-outs due are still unfired (claimed elsewhere?)")
                time.sleep(0.02)  # claimed by another replica: wait for it to finish

    while True:
        scheduler.sync()
        step = scheduler.next_check_at()
        if step is None or step > clock.base.now() + target_offset:
            break
        if step > clock.now():
            clock.move_to(step - clock.base.now())
        settle_at(step)
        if time.monotonic() > deadline:
            raise TimeoutError("advancing the clock did not settle in time")
    clock.move_to(target_offset)
    settle_at(clock.now())
    return clock.now()
