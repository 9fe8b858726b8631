"""The Merkle tree over every stored event, kept in the events' database.

Tables (in the events' schema on PostgreSQL, in the events' file on SQLite):

- `merkle_leaves`: one row per event in feed order: its leaf index, notification id,
  aggregate id and version, the event's own hash (SHA-256 of audit.canonical) and the
  RFC 9162 leaf hash of (aggregate id, version, event hash). So the tree says which
  versions of which aggregate it holds.
- `merkle_nodes`: the root of every perfect subtree whose height is a multiple of 4
  (16, 256, 4096... leaves): about one row per 15 events. Any other subtree root is
  folded from at most 8 stored rows below it, so a proof at any size reads a few
  dozen rows, never a range of leaves.
- `merkle_state`: the tree's size, the feed position of its last leaf and its right
  edge (the perfect subtrees it splits into), updated in the leaves' transaction: the
  position and the leaves commit together, so each event is appended exactly once.
- `merkle_checkpoints`: the signed checkpoints, also published outside the database.

On PostgreSQL, triggers refuse UPDATE and DELETE of leaves, nodes and checkpoints.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import StoredEvent

from services.dispute import merkle
from services.dispute.infrastructure.backend import recorders_of
from services.dispute.infrastructure.hashchain import canonical
from services.dispute.infrastructure.hashchain import originator_text as _originator
from services.dispute.infrastructure.merkle import CHECKPOINTS, LEAVES, NODES, STATE

__all__ = ["CHECKPOINTS", "LEAVES", "NODES", "STATE", "TreeStore"]

STRIDE = 4  # perfect subtrees of heights 4, 8, 12... are stored
TREE = "events"  # the one tree's name in merkle_state


class PositionMoved(Exception):
    """The tree is no longer at the position a batch was read after: read again."""


def event_hash(event: StoredEvent) -> bytes:
    return hashlib.sha256(canonical(event)).digest()


def leaf_data(originator_id: str, version: int, digest: bytes) -> bytes:
    """What a leaf commits to: the aggregate, the version and the event's hash."""
    parts = (b"dispute-event/v1", originator_id.encode(), str(version).encode(), digest)
    return b"".join(len(p).to_bytes(8, "big") + p for p in parts)


def leaf_of(originator_id: str, version: int, digest: bytes) -> bytes:
    return merkle.leaf_hash(leaf_data(originator_id, version, digest))


@dataclass(frozen=True)
class Leaf:
    index: int
    notification_id: int
    originator_id: str
    version: int
    event_hash: bytes
    leaf_hash: bytes


@dataclass
class TreeState:
    size: int
    position: int  # the notification id of the last leaf (0: none)
    frontier: list[tuple[int, bytes]]

    @property
    def root(self) -> bytes:
        return merkle.frontier_root(self.frontier)


@dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    note: str


class TreeStore:
    """The tree's tables on one datastore (PostgreSQL or SQLite), through the backend's
    `MerkleTreeRecorder` (services.dispute.infrastructure)."""

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore
        self.recorder = recorders_of(datastore).merkle_tree_recorder()

    def create_table(self) -> None:
        self.recorder.create_tables(TREE)

    # Reading ----------------------------------------------------------------------

    def state(self) -> TreeState:
        row = self.recorder.state(TREE)
        if row is None:
            return TreeState(0, 0, [])
        return TreeState(
            int(row["size"]),
            int(row["notification_id"]),
            merkle.decode_frontier(bytes(row["frontier"])),
        )

    def count_leaves(self) -> tuple[int, int]:
        """(how many leaf rows there are, 1 + the largest leaf index)."""
        row = self.recorder.count_leaves()
        return int(row["n"]), (int(row["m"]) + 1 if row["m"] is not None else 0)

    def leaves_of(self, originator_id: str) -> list[Leaf]:
        """The leaves of one aggregate, by version."""
        return [self._leaf(r) for r in self.recorder.leaves_of(originator_id)]

    def leaves(self, start: int, limit: int) -> list[Leaf]:
        return [self._leaf(r) for r in self.recorder.leaves(start, limit)]

    @staticmethod
    def _leaf(r: Any) -> Leaf:
        return Leaf(
            int(r["leaf_index"]),
            int(r["notification_id"]),
            str(r["originator_id"]),
            int(r["originator_version"]),
            bytes(r["event_hash"]),
            bytes(r["leaf_hash"]),
        )

    def perfect(self, wanted: Iterable[merkle.Perfect]) -> dict[merkle.Perfect, bytes]:
        """The root of each perfect subtree (level, index), from the stored leaves and
        nodes: one query for the leaves and one per stored level needed."""
        wanted = set(wanted)
        need: dict[int, set[int]] = {}  # stored level -> indexes
        for level, index in wanted:
            base = level - level % STRIDE
            width = 1 << (level - base)
            need.setdefault(base, set()).update(range(index * width, (index + 1) * width))
        rows = self.recorder.hashes({base: sorted(indexes) for base, indexes in need.items()})
        result = {}
        for level, index in wanted:
            base = level - level % STRIDE
            width = 1 << (level - base)
            try:
                layer = [rows[(base, i)] for i in range(index * width, (index + 1) * width)]
            except KeyError as missing:
                raise TreeDamaged(f"the tree lacks {missing} under {level, index}") from None
            while len(layer) > 1:
                layer = [
                    merkle.node_hash(a, b) for a, b in zip(layer[::2], layer[1::2], strict=False)
                ]
            result[(level, index)] = layer[0]
        return result

    def root_at(self, size: int) -> bytes:
        if size == 0:
            return merkle.EMPTY_ROOT
        parts = merkle.perfect_parts(0, size)
        known = self.perfect(parts)
        return merkle.fold([known[p] for p in parts])

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return merkle.range_roots(merkle.inclusion_ranges(index, size), self.perfect)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        return merkle.range_roots(merkle.consistency_ranges(first, second), self.perfect)

    def checkpoints(self, limit: int = 1, at_most: int | None = None) -> list[StoredCheckpoint]:
        """The newest checkpoints (of size at most `at_most`), newest first."""
        rows = self.recorder.checkpoints(limit, at_most)
        return [StoredCheckpoint(int(r["tree_size"]), bytes(r["root"]), r["note"]) for r in rows]

    def checkpoint(self, size: int) -> StoredCheckpoint | None:
        found = self.checkpoints(1, at_most=size)
        return found[0] if found and found[0].size == size else None

    # Writing ----------------------------------------------------------------------

    def append(
        self,
        expected: TreeState,
        after: TreeState,
        leaves: Sequence[Leaf],
        nodes: Sequence[tuple[int, int, bytes]],
    ) -> None:
        """Writes a batch's leaves and stored nodes and the new state in one
        transaction, provided the tree is still at `expected` (PositionMoved if not)."""
        appended = self.recorder.append(
            TREE,
            (expected.size, expected.position),
            (after.size, after.position, merkle.encode_frontier(after.frontier)),
            [
                (f.index, f.notification_id, f.originator_id, f.version, f.event_hash,
                 f.leaf_hash)
                for f in leaves
            ],
            [(level, index, digest) for level, index, digest in nodes],
        )  # fmt: skip
        if not appended:
            raise PositionMoved(f"the tree is no longer at size {expected.size}")

    def add_checkpoint(self, size: int, root: bytes, note: str) -> None:
        self.recorder.add_checkpoint(size, root, note)


class TreeDamaged(Exception):
    """A stored leaf or node the tree needs is missing (rows were deleted)."""


def leaves_for(
    state: TreeState, events: Sequence[tuple[int, StoredEvent]]
) -> tuple[TreeState, list[Leaf], list[tuple[int, int, bytes]]]:
    """Appends (notification id, event) pairs to a copy of `state`: the new state, the
    leaves and the nodes to store (heights that are multiples of STRIDE)."""
    frontier = list(state.frontier)
    size = state.size
    leaves: list[Leaf] = []
    nodes: list[tuple[int, int, bytes]] = []
    position = state.position
    for notification_id, event in events:
        originator_id = _originator(event.originator_id)
        version = int(event.originator_version)
        digest = event_hash(event)
        leaf = leaf_of(originator_id, version, digest)
        leaves.append(Leaf(size, notification_id, originator_id, version, digest, leaf))
        for level, index, node in merkle.append_to_frontier(frontier, size, leaf):
            if level % STRIDE == 0:
                nodes.append((level, index, node))
        size += 1
        position = notification_id
    return TreeState(size, position, frontier), leaves, nodes
