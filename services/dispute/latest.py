"""The newest version of each dispute this process has loaded or saved, so that a command
need not decode and replay the dispute's history again.

A load takes a copy of the cached dispute and applies only the events recorded after it
(by another process: one indexed statement, which usually returns nothing) instead of
reading the latest snapshot and the events after it and replaying them. Correctness does
not depend on the cache being current: every write appends at the next version, and an
append fails if another writer took that version first, exactly as without the cache.

The cache holds copies (`Dispute.clone`): what a command changes is its own copy, so a
command that fails leaves the cache as it was, and two threads never share an aggregate.
Bounded twice: by the number of disputes, and by the records they hold in all (messages,
evidence, information requests: the part of a case that grows without a domain limit),
so a few huge cases cannot take the process's memory. The least recently used dispute
goes first; a case too big for the whole budget is not kept. Size 0 turns it off.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from uuid import UUID

from .domain import Dispute

# Records kept in all, per process: about 40 MB at a few hundred bytes each.
MAX_RECORDS = 100_000


def weight(dispute: Dispute) -> int:
    """What a kept dispute costs the budget: itself and each of its records."""
    return 1 + len(dispute.messages) + len(dispute.evidence) + len(dispute.info_requests)


class LatestDisputes:
    def __init__(self, maxsize: int, max_records: int = MAX_RECORDS) -> None:
        if maxsize < 0:
            raise ValueError("the cache size must be 0 (off) or more")
        self.maxsize = maxsize
        self.max_records = max_records
        self._kept: OrderedDict[UUID, tuple[Dispute, int]] = OrderedDict()
        self._records = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._kept)

    def get(self, dispute_id: UUID) -> Dispute | None:
        """A copy of the newest version kept, or None."""
        with self._lock:
            kept = self._kept.get(dispute_id)
            if kept is None:
                return None
            self._kept.move_to_end(dispute_id)
        return kept[0].clone()

    @property
    def records(self) -> int:
        """The weight of what is kept (see `weight`)."""
        return self._records

    def put(self, dispute: Dispute) -> None:
        """Keeps a copy of `dispute`, unless a newer version is kept already. Only a
        dispute as it is stored (no pending events) may be kept."""
        if not self.maxsize:
            return
        if dispute.pending_events:
            raise ValueError("a dispute with unsaved events cannot be kept")
        cost = weight(dispute)
        if cost > self.max_records:
            self.discard(dispute.id)  # too big to keep: an older copy must not stay either
            return
        kept_copy = dispute.clone()
        with self._lock:
            kept = self._kept.pop(dispute.id, None)
            if kept is not None:
                self._records -= kept[1]
                if kept[0].version >= kept_copy.version:
                    kept_copy, cost = kept
            self._kept[dispute.id] = (kept_copy, cost)
            self._records += cost
            while len(self._kept) > self.maxsize or self._records > self.max_records:
                _, (_, gone) = self._kept.popitem(last=False)
                self._records -= gone

    def discard(self, dispute_id: UUID) -> None:
        with self._lock:
            kept = self._kept.pop(dispute_id, None)
            if kept is not None:
                self._records -= kept[1]
