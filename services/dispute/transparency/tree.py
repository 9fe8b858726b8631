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
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from services.dispute import merkle
from services.dispute.infrastructure.hashchain import canonical
from services.dispute.infrastructure.hashchain import originator_text as _originator

from ..infrastructure.postgres import serialised_ddl

STRIDE = 4  # perfect subtrees of heights 4, 8, 12... are stored
LEAVES = "merkle_leaves"
NODES = "merkle_nodes"
STATE = "merkle_state"
CHECKPOINTS = "merkle_checkpoints"
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
    """The tree's tables on one datastore (PostgreSQL or SQLite)."""

    def __init__(self, datastore: PostgresDatastore | SQLiteDatastore) -> None:
        self.datastore = datastore
        self.postgres = isinstance(datastore, PostgresDatastore)
        self.blob = "bytea" if self.postgres else "BLOB"

    # SQL plumbing -----------------------------------------------------------------

    def t(self, name: str) -> str:
        if self.postgres:
            assert isinstance(self.datastore, PostgresDatastore)
            return f'"{self.datastore.schema}"."{name}"'
        return name

    def run(self, curs: Any, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        if self.postgres:
            curs.execute(statement, list(params) or None)
            return list(curs.fetchall()) if curs.description else []
        curs.execute(re.sub(r"%s", "?", statement), list(params))
        return list(curs.fetchall())

    def run_many(self, curs: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            curs.executemany(statement if self.postgres else statement.replace("%s", "?"), rows)

    def rowcount(self, curs: Any) -> int:
        return int(curs.rowcount if self.postgres else curs.sqlite_cursor.rowcount)

    def create_table(self) -> None:
        b = self.blob
        statements = [
            f"CREATE TABLE IF NOT EXISTS {self.t(LEAVES)} (leaf_index bigint PRIMARY KEY, "
            f"notification_id bigint NOT NULL, originator_id text NOT NULL, "
            f"originator_version bigint NOT NULL, event_hash {b} NOT NULL, leaf_hash {b} NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS merkle_leaves_aggregate_idx ON {self.t(LEAVES)} "
            "(originator_id, originator_version)",
            f"CREATE TABLE IF NOT EXISTS {self.t(NODES)} (level integer NOT NULL, "
            f"idx bigint NOT NULL, hash {b} NOT NULL, PRIMARY KEY (level, idx))",
            f"CREATE TABLE IF NOT EXISTS {self.t(STATE)} (name text PRIMARY KEY, "
            f"size bigint NOT NULL, notification_id bigint NOT NULL, frontier {b} NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.t(CHECKPOINTS)} (tree_size bigint PRIMARY KEY, "
            f"root {b} NOT NULL, note text NOT NULL)",
        ]
        if self.postgres:
            assert isinstance(self.datastore, PostgresDatastore)
            schema = self.datastore.schema
            statements.append(
                f'CREATE OR REPLACE FUNCTION "{schema}".merkle_append_only() RETURNS trigger '
                "LANGUAGE plpgsql AS $fn$ BEGIN RAISE EXCEPTION "
                "'the Merkle tree is append-only: % on % refused', TG_OP, TG_TABLE_NAME "
                "USING ERRCODE = 'insufficient_privilege'; END $fn$"
            )
            for table in (LEAVES, NODES, CHECKPOINTS):
                statements.append(
                    "DO $do$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger t "
                    "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n "
                    f"ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' "
                    f"AND c.relname = '{table}' AND t.tgname = '{table}_no_change') THEN "
                    f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON "
                    f"{self.t(table)} FOR EACH ROW EXECUTE FUNCTION "
                    f'"{schema}".merkle_append_only(); END IF; END $do$'
                )
        insert_state = (
            f"INSERT INTO {self.t(STATE)} (name, size, notification_id, frontier) "
            "VALUES (%s, 0, 0, %s) ON CONFLICT (name) DO NOTHING"
        )
        if self.postgres:
            assert isinstance(self.datastore, PostgresDatastore)
            with (
                serialised_ddl(self.datastore, "merkle_tree"),
                self.datastore.transaction(commit=True) as curs,
            ):
                for statement in statements:
                    curs.execute(statement)
                curs.execute(insert_state, (TREE, b""))
        else:
            with self.datastore.transaction(commit=True) as curs:
                for statement in statements:
                    curs.execute(statement)
                curs.execute(insert_state.replace("%s", "?"), (TREE, b""))

    # Reading ----------------------------------------------------------------------

    def state(self) -> TreeState:
        with self.datastore.transaction(commit=False) as curs:
            row = self.run(
                curs,
                f"SELECT size, notification_id, frontier FROM {self.t(STATE)} WHERE name = %s",
                [TREE],
            )
        if not row:
            return TreeState(0, 0, [])
        return TreeState(
            int(row[0]["size"]),
            int(row[0]["notification_id"]),
            merkle.decode_frontier(bytes(row[0]["frontier"])),
        )

    def count_leaves(self) -> tuple[int, int]:
        """(how many leaf rows there are, 1 + the largest leaf index)."""
        with self.datastore.transaction(commit=False) as curs:
            row = self.run(
                curs, f"SELECT COUNT(*) AS n, MAX(leaf_index) AS m FROM {self.t(LEAVES)}"
            )[0]
        return int(row["n"]), (int(row["m"]) + 1 if row["m"] is not None else 0)

    def leaves_of(self, originator_id: str) -> list[Leaf]:
        """The leaves of one aggregate, by version."""
        with self.datastore.transaction(commit=False) as curs:
            rows = self.run(
                curs,
                f"SELECT leaf_index, notification_id, originator_id, originator_version, "
                f"event_hash, leaf_hash FROM {self.t(LEAVES)} WHERE originator_id = %s "
                "ORDER BY originator_version, leaf_index",
                [originator_id],
            )
        return [self._leaf(r) for r in rows]

    def leaves(self, start: int, limit: int) -> list[Leaf]:
        with self.datastore.transaction(commit=False) as curs:
            rows = self.run(
                curs,
                f"SELECT leaf_index, notification_id, originator_id, originator_version, "
                f"event_hash, leaf_hash FROM {self.t(LEAVES)} WHERE leaf_index >= %s "
                "ORDER BY leaf_index LIMIT %s",
                [start, limit],
            )
        return [self._leaf(r) for r in rows]

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
        rows: dict[tuple[int, int], bytes] = {}
        with self.datastore.transaction(commit=False) as curs:
            for base, indexes in need.items():
                ordered = sorted(indexes)
                if base == 0:
                    found = self._select_in(
                        curs,
                        f"SELECT leaf_index AS i, leaf_hash AS h FROM {self.t(LEAVES)} "
                        "WHERE leaf_index",
                        ordered,
                    )
                else:
                    found = self._select_in(
                        curs, f"SELECT idx AS i, hash AS h FROM {self.t(NODES)} "
                        f"WHERE level = {int(base)} AND idx", ordered,
                    )  # fmt: skip
                for r in found:
                    rows[(base, int(r["i"]))] = bytes(r["h"])
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

    def _select_in(self, curs: Any, head: str, values: Sequence[int]) -> list[Any]:
        if self.postgres:
            return self.run(curs, head + " = ANY(%s)", [list(values)])
        out: list[Any] = []
        for i in range(0, len(values), 500):
            chunk = values[i : i + 500]
            out += self.run(curs, head + f" IN ({', '.join(['%s'] * len(chunk))})", chunk)
        return out

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
        where = "WHERE tree_size <= %s " if at_most is not None else ""
        params: list[Any] = [at_most] if at_most is not None else []
        with self.datastore.transaction(commit=False) as curs:
            rows = self.run(
                curs,
                f"SELECT tree_size, root, note FROM {self.t(CHECKPOINTS)} {where}"
                "ORDER BY tree_size DESC LIMIT %s",
                [*params, limit],
            )
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
        with self.datastore.transaction(commit=True) as curs:
            # The guard is the first statement: it locks the state row (PostgreSQL) or
            # takes the write lock (SQLite) before anything is written.
            self.run(
                curs,
                f"UPDATE {self.t(STATE)} SET size = %s, notification_id = %s, frontier = %s "
                "WHERE name = %s AND size = %s AND notification_id = %s",
                [
                    after.size,
                    after.position,
                    merkle.encode_frontier(after.frontier),
                    TREE,
                    expected.size,
                    expected.position,
                ],
            )
            if self.rowcount(curs) != 1:
                raise PositionMoved(f"the tree is no longer at size {expected.size}")
            self.run_many(
                curs,
                f"INSERT INTO {self.t(LEAVES)} (leaf_index, notification_id, originator_id, "
                "originator_version, event_hash, leaf_hash) VALUES (%s, %s, %s, %s, %s, %s)",
                [
                    (f.index, f.notification_id, f.originator_id, f.version, f.event_hash,
                     f.leaf_hash)
                    for f in leaves
                ],
            )  # fmt: skip
            self.run_many(
                curs,
                f"INSERT INTO {self.t(NODES)} (level, idx, hash) VALUES (%s, %s, %s)",
                [(level, index, digest) for level, index, digest in nodes],
            )

    def add_checkpoint(self, size: int, root: bytes, note: str) -> None:
        with self.datastore.transaction(commit=True) as curs:
            self.run(
                curs,
                f"INSERT INTO {self.t(CHECKPOINTS)} (tree_size, root, note) VALUES (%s, %s, %s) "
                "ON CONFLICT (tree_size) DO NOTHING",
                [size, root, note],
            )


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
