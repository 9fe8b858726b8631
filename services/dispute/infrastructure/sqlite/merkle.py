"""The Merkle log's tables on SQLite (which cannot refuse changes to its own file: they
are detectable)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.sqlite import SQLiteDatastore

from ..merkle import MerkleTreeRecorder

IN_CHUNK = 500  # values per IN (...) list


class SQLiteMerkleTreeRecorder(MerkleTreeRecorder):
    datastore: SQLiteDatastore
    p = "?"
    blob_type = "BLOB"

    def table(self, name: str) -> str:
        return name

    def run(self, curs: Any, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        curs.execute(statement, list(params))
        return list(curs.fetchall())

    def run_many(self, curs: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            curs.executemany(statement, rows)

    def rowcount(self, curs: Any) -> int:
        return int(curs.sqlite_cursor.rowcount)

    def create_tables(self, tree: str) -> None:
        with self.datastore.transaction(commit=True) as curs:
            for statement in self.table_statements():
                curs.execute(statement)
            curs.execute(self.insert_state(), (tree, b""))

    def select_in(self, curs: Any, head: str, values: Sequence[int]) -> list[Any]:
        out: list[Any] = []
        for i in range(0, len(values), IN_CHUNK):
            chunk = values[i : i + IN_CHUNK]
            out += self.run(curs, head + f" IN ({', '.join(['?'] * len(chunk))})", chunk)
        return out
