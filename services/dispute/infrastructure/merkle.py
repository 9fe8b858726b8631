"""The Merkle log's tables (services.dispute.transparency.tree describes them):
`merkle_leaves`, `merkle_nodes`, `merkle_state` and `merkle_checkpoints`.

Transactions are the library's (`datastore.transaction`); a batch's leaves, nodes and
the tree's new state are written in one, guarded by the state it was computed from.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

LEAVES = "merkle_leaves"
NODES = "merkle_nodes"
STATE = "merkle_state"
CHECKPOINTS = "merkle_checkpoints"

LEAF_COLUMNS = (
    "leaf_index, notification_id, originator_id, originator_version, event_hash, leaf_hash"
)


class MerkleTreeRecorder(ABC):
    p: ClassVar[str]  # the driver's placeholder
    blob_type: ClassVar[str]

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore

    # What each backend provides ----------------------------------------------------

    @abstractmethod
    def table(self, name: str) -> str: ...

    @abstractmethod
    def run(self, curs: Any, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        """Runs one statement; returns its rows (none for a write)."""

    @abstractmethod
    def run_many(self, curs: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def rowcount(self, curs: Any) -> int: ...

    @abstractmethod
    def create_tables(self, tree: str) -> None:
        """Creates the tables and the tree's state row, named `tree`, if absent."""

    @abstractmethod
    def select_in(self, curs: Any, head: str, values: Sequence[int]) -> list[Any]:
        """`head` (a SELECT ending in a column) restricted to the column's `values`."""

    # The same on both --------------------------------------------------------------

    def table_statements(self) -> list[str]:
        b = self.blob_type
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table(LEAVES)} (leaf_index bigint PRIMARY KEY, "
            f"notification_id bigint NOT NULL, originator_id text NOT NULL, "
            f"originator_version bigint NOT NULL, event_hash {b} NOT NULL, leaf_hash {b} NOT NULL)",
            f"CREATE INDEX IF NOT EXISTS merkle_leaves_aggregate_idx ON {self.table(LEAVES)} "
            "(originator_id, originator_version)",
            f"CREATE TABLE IF NOT EXISTS {self.table(NODES)} (level integer NOT NULL, "
            f"idx bigint NOT NULL, hash {b} NOT NULL, PRIMARY KEY (level, idx))",
            f"CREATE TABLE IF NOT EXISTS {self.table(STATE)} (name text PRIMARY KEY, "
            f"size bigint NOT NULL, notification_id bigint NOT NULL, frontier {b} NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.table(CHECKPOINTS)} (tree_size bigint PRIMARY KEY, "
            f"root {b} NOT NULL, note text NOT NULL)",
        ]

    def insert_state(self) -> str:
        return (
            f"INSERT INTO {self.table(STATE)} (name, size, notification_id, frontier) "
            f"VALUES ({self.p}, 0, 0, {self.p}) ON CONFLICT (name) DO NOTHING"
        )

    def state(self, tree: str) -> Any:
        """The state row (size, notification_id, frontier), or None."""
        with self.datastore.transaction(commit=False) as curs:
            row = self.run(
                curs,
                f"SELECT size, notification_id, frontier FROM {self.table(STATE)} "
                f"WHERE name = {self.p}",
                [tree],
            )
        return row[0] if row else None

    def count_leaves(self) -> Any:
        """A row: how many leaves (n), the largest leaf index (m)."""
        with self.datastore.transaction(commit=False) as curs:
            return self.run(
                curs, f"SELECT COUNT(*) AS n, MAX(leaf_index) AS m FROM {self.table(LEAVES)}"
            )[0]

    def leaves_of(self, originator_id: str) -> list[Any]:
        with self.datastore.transaction(commit=False) as curs:
            return self.run(
                curs,
                f"SELECT {LEAF_COLUMNS} FROM {self.table(LEAVES)} WHERE originator_id = {self.p} "
                "ORDER BY originator_version, leaf_index",
                [originator_id],
            )

    def leaves(self, start: int, limit: int) -> list[Any]:
        p = self.p
        with self.datastore.transaction(commit=False) as curs:
            return self.run(
                curs,
                f"SELECT {LEAF_COLUMNS} FROM {self.table(LEAVES)} WHERE leaf_index >= {p} "
                f"ORDER BY leaf_index LIMIT {p}",
                [start, limit],
            )

    def hashes(self, need: Mapping[int, Sequence[int]]) -> dict[tuple[int, int], bytes]:
        """The stored hashes at (level, index) for each level's indexes (level 0: the
        leaves), read in one transaction."""
        found: dict[tuple[int, int], bytes] = {}
        with self.datastore.transaction(commit=False) as curs:
            for base, indexes in need.items():
                if base == 0:
                    head = f"SELECT leaf_index AS i, leaf_hash AS h FROM {self.table(LEAVES)} "
                    rows = self.select_in(curs, head + "WHERE leaf_index", indexes)
                else:
                    head = f"SELECT idx AS i, hash AS h FROM {self.table(NODES)} "
                    rows = self.select_in(
                        curs, head + f"WHERE level = {int(base)} AND idx", indexes
                    )
                for r in rows:
                    found[(base, int(r["i"]))] = bytes(r["h"])
        return found

    def checkpoints(self, limit: int, at_most: int | None) -> list[Any]:
        p = self.p
        where = f"WHERE tree_size <= {p} " if at_most is not None else ""
        params: list[Any] = [at_most] if at_most is not None else []
        with self.datastore.transaction(commit=False) as curs:
            return self.run(
                curs,
                f"SELECT tree_size, root, note FROM {self.table(CHECKPOINTS)} {where}"
                f"ORDER BY tree_size DESC LIMIT {p}",
                [*params, limit],
            )

    def append(
        self,
        tree: str,
        expected: tuple[int, int],
        after: tuple[int, int, bytes],
        leaves: Sequence[Sequence[Any]],
        nodes: Sequence[tuple[int, int, bytes]],
    ) -> bool:
        """Writes the leaves (rows of LEAF_COLUMNS), the nodes and the new state (size,
        position, frontier) in one transaction, provided the state is still `expected`
        (size, position); returns whether it was."""
        p = self.p
        with self.datastore.transaction(commit=True) as curs:
            # The guard is the first statement: it locks the state row (PostgreSQL) or
            # takes the write lock (SQLite) before anything is written.
            self.run(
                curs,
                f"UPDATE {self.table(STATE)} SET size = {p}, notification_id = {p}, "
                f"frontier = {p} WHERE name = {p} AND size = {p} AND notification_id = {p}",
                [*after, tree, *expected],
            )
            if self.rowcount(curs) != 1:
                return False
            self.run_many(
                curs,
                f"INSERT INTO {self.table(LEAVES)} ({LEAF_COLUMNS}) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
                leaves,
            )
            self.run_many(
                curs,
                f"INSERT INTO {self.table(NODES)} (level, idx, hash) VALUES ({p}, {p}, {p})",
                nodes,
            )
        return True

    def add_checkpoint(self, size: int, root: bytes, note: str) -> None:
        p = self.p
        with self.datastore.transaction(commit=True) as curs:
            self.run(
                curs,
                f"INSERT INTO {self.table(CHECKPOINTS)} (tree_size, root, note) "
                f"VALUES ({p}, {p}, {p}) ON CONFLICT (tree_size) DO NOTHING",
                [size, root, note],
            )
