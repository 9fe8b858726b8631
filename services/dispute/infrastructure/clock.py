"""The sandbox clock's tables: its offset, and the target of each advance by request.

- `dispute_sandbox_clock`: one row, the offset in microseconds (only ever moves forward).
- `dispute_sandbox_clock_advances`: the offset an advance moves to, fixed per idempotency
  key by the first attempt, kept for as long as idempotency keys.
"""

from __future__ import annotations

from .tables import TableRecorder

CLOCK_TABLE = "dispute_sandbox_clock"
ADVANCES_TABLE = "dispute_sandbox_clock_advances"
CLOCK_NAME = "sandbox"


class SandboxClockRecorder(TableRecorder):
    def create_tables(self) -> None:
        p, clock, advances = self.p, self.table(CLOCK_TABLE), self.table(ADVANCES_TABLE)
        with self.ddl() as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {clock} ("
                "name text PRIMARY KEY, offset_us bigint NOT NULL)"
            )
            c.execute(
                f"INSERT INTO {clock} (name, offset_us) VALUES ({p}, 0) "
                "ON CONFLICT (name) DO NOTHING",
                (CLOCK_NAME,),
            )
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {advances} (request text PRIMARY KEY, "
                "target_us bigint NOT NULL, created_at double precision NOT NULL)"
            )

    def advance_target(self, request: str, by_us: int, now: float, forget_before: float) -> int:
        """The offset (microseconds) the advance `request` moves to: fixed by its first
        call as the stored offset plus `by_us`. Forgets targets created before
        `forget_before` on the way, in the same transaction."""
        p, clock, advances = self.p, self.table(CLOCK_TABLE), self.table(ADVANCES_TABLE)
        with self.transaction(commit=True) as c:
            c.execute(f"DELETE FROM {advances} WHERE created_at < {p}", (forget_before,))
            c.execute(
                f"INSERT INTO {advances} (request, target_us, created_at) "
                f"SELECT {p}, offset_us + {p}, {p} FROM {clock} WHERE name = {p} "
                "ON CONFLICT (request) DO NOTHING",
                (request, by_us, now, CLOCK_NAME),
            )
            c.execute(f"SELECT target_us FROM {advances} WHERE request = {p}", (request,))
            row = c.fetchone()
        return int(row["target_us"])

    def load(self) -> int | None:
        """The stored offset in microseconds (None: no row)."""
        with self.transaction(commit=False) as c:
            c.execute(
                f"SELECT offset_us FROM {self.table(CLOCK_TABLE)} WHERE name = {self.p}",
                (CLOCK_NAME,),
            )
            row = c.fetchone()
        return int(row["offset_us"]) if row else None

    def save(self, offset_us: int) -> int:
        """Stores the offset unless a larger one is stored; returns the one now stored."""
        p, clock = self.p, self.table(CLOCK_TABLE)
        with self.transaction(commit=True) as c:
            c.execute(
                f"UPDATE {clock} SET offset_us = {p} WHERE name = {p} AND offset_us < {p}",
                (offset_us, CLOCK_NAME, offset_us),
            )
            c.execute(f"SELECT offset_us FROM {clock} WHERE name = {p}", (CLOCK_NAME,))
            row = c.fetchone()
        return int(row["offset_us"])
