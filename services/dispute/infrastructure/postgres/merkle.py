"""The Merkle log's tables on PostgreSQL, where triggers refuse UPDATE and DELETE of
leaves, nodes and checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.postgres import PostgresDatastore

from ..merkle import CHECKPOINTS, LEAVES, NODES, MerkleTreeRecorder
from .tables import serialised_ddl


class PostgresMerkleTreeRecorder(MerkleTreeRecorder):
    datastore: PostgresDatastore
    p = "%s"
    blob_type = "bytea"

    def table(self, name: str) -> str:
        return f'"{self.datastore.schema}"."{name}"'

    def run(self, curs: Any, statement: str, params: Sequence[Any] = ()) -> list[Any]:
        curs.execute(statement, list(params) or None)
        return list(curs.fetchall()) if curs.description else []

    def run_many(self, curs: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            curs.executemany(statement, rows)

    def rowcount(self, curs: Any) -> int:
        return int(curs.rowcount)

    def append_only_statements(self) -> list[str]:
        schema = self.datastore.schema
        statements = [
            f'CREATE OR REPLACE FUNCTION "{schema}".merkle_append_only() RETURNS trigger '
            "LANGUAGE plpgsql AS $fn$ BEGIN RAISE EXCEPTION "
            "'the Merkle tree is append-only: % on % refused', TG_OP, TG_TABLE_NAME "
            "USING ERRCODE = 'insufficient_privilege'; END $fn$"
        ]
        for table in (LEAVES, NODES, CHECKPOINTS):
            statements.append(
                "DO $do$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger t "
                "JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n "
                f"ON n.oid = c.relnamespace WHERE n.nspname = '{schema}' "
                f"AND c.relname = '{table}' AND t.tgname = '{table}_no_change') THEN "
                f"CREATE TRIGGER {table}_no_change BEFORE UPDATE OR DELETE ON "
                f"{self.table(table)} FOR EACH ROW EXECUTE FUNCTION "
                f'"{schema}".merkle_append_only(); END IF; END $do$'
            )
        return statements

    def create_tables(self, tree: str) -> None:
        with (
            serialised_ddl(self.datastore, "merkle_tree"),
            self.datastore.transaction(commit=True) as curs,
        ):
            for statement in [*self.table_statements(), *self.append_only_statements()]:
                curs.execute(statement)
            curs.execute(self.insert_state(), (tree, b""))

    def select_in(self, curs: Any, head: str, values: Sequence[int]) -> list[Any]:
        return self.run(curs, head + " = ANY(%s)", [list(values)])
