"""The newest version of each dispute this process has loaded or saved, so that a command
need not decode and replay the dispute's history again.

A load takes a copy of the cached dispute and applies only the events recorded after it
(by another process: one indexed statement, which usually returns nothing) instead of
reading the latest snapshot and the events after it and replaying them. Correctness does
not depend on the cache being current: every write appends at the next version, and an
append fails if another writer took that version first, exactly as without the cache.

The cache holds copies (`Dispute.clone`): what a command changes is its own copy, so a
command that fails leaves the cache as it was, and two threads never share an aggregate.
Bounded: the least recently used dispute goes first. Size 0 turns it off.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from uuid import UUID

from .domain import Dispute


class LatestDisputes:
    def __init__(self, maxsize: int) -> None:
        if maxsize < 0:
            raise ValueError("the cache size must be 0 (off) or more")
        self.maxsize = maxsize
        self._kept: OrderedDict[UUID, Dispute] = OrderedDict()
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
        return kept.clone()

    def put(self, dispute: Dispute) -> None:
        """Keeps a copy of `dispute`, unless a newer version is kept already. Only a
        dispute as it is stored (no pending events) may be kept."""
        if not self.maxsize:
            return
        if dispute.pending_events:
            raise ValueError("a dispute with unsaved events cannot be kept")
        kept_copy = dispute.clone()
        with self._lock:
            kept = self._kept.get(dispute.id)
            if kept is not None and kept.version >= kept_copy.version:
                return
            self._kept[dispute.id] = kept_copy
            self._kept.move_to_end(dispute.id)
            while len(self._kept) > self.maxsize:
                self._kept.popitem(last=False)

    def discard(self, dispute_id: UUID) -> None:
        with self._lock:
            self._kept.pop(dispute_id, None)
