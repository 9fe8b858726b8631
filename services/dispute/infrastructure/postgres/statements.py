"""The SQL of the PostgreSQL event recorder's own tables, one named statement each.

Beside the library's events table `<events>` (the names derive from it):

- `<events>_idempotency_claims` and `<events>_idempotency_responses` (idempotency keys,
  services.dispute.infrastructure.idempotency);
- `<events>_hashes`: the hash chain (services.dispute.infrastructure.hashchain);
- `<events>_append(...)`: the function that writes one batch of events, their hashes
  and the response in one statement (see `events`);
- `<events>_append_only()` and its triggers: history is append-only for every role that
  is not allowed to disable triggers (the table owner or a superuser can: see the
  README, "Tamper evidence").
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.sql import SQL, Composed, Identifier, Literal


@dataclass(frozen=True)
class EventTables:
    """The names of the recorder's tables and functions, in one schema."""

    schema: str
    events: str
    id_type: str  # the originator id's type
    event_type: str  # the library's composite type of a stored event
    channel: str  # the library's NOTIFY channel

    @property
    def claims(self) -> str:
        return f"{self.events}_idempotency_claims"

    @property
    def responses(self) -> str:
        return f"{self.events}_idempotency_responses"

    @property
    def hashes(self) -> str:
        return f"{self.events}_hashes"

    @property
    def append(self) -> str:
        return f"{self.events}_append"

    @property
    def guard(self) -> str:
        return f"{self.events}_append_only"

    def names(self) -> list[str]:
        """Every name made here (each must fit PostgreSQL's identifier length)."""
        return [self.append, self.claims, self.responses, self.hashes, self.guard]

    def ids(self) -> dict[str, Identifier]:
        return {
            "schema": Identifier(self.schema),
            "claims": Identifier(self.claims),
            "responses": Identifier(self.responses),
            "index": Identifier(f"{self.responses}_created_idx"),
            "events": Identifier(self.events),
            "hashes": Identifier(self.hashes),
            "id_type": Identifier(self.id_type),
            "guard": Identifier(self.guard),
            "append": Identifier(self.append),
            "event_type": Identifier(self.event_type),
            "channel": Identifier(self.channel),
        }


# Creating ---------------------------------------------------------------------------------


def create_statements(t: EventTables) -> list[Composed]:
    """What the recorder creates after the library's own tables, in order."""
    return [
        create_claims_table(t),
        create_responses_table(t),
        create_responses_index(t),
        create_hashes_table(t),
        create_append_function(t),
        create_guard_function(t),
        *(
            create_guard_trigger(t, table, suffix)
            for table in (t.events, t.hashes)
            for suffix in ("_no_change", "_no_truncate")
        ),
    ]


def create_claims_table(t: EventTables) -> Composed:
    return SQL(
        "CREATE TABLE IF NOT EXISTS {schema}.{claims} ("
        "principal text NOT NULL, key text NOT NULL, fingerprint text NOT NULL, "
        "token text NOT NULL, lease_until double precision NOT NULL, "
        "created_at double precision NOT NULL, PRIMARY KEY (principal, key))"
    ).format(**t.ids())


def create_responses_table(t: EventTables) -> Composed:
    return SQL(
        "CREATE TABLE IF NOT EXISTS {schema}.{responses} ("
        "principal text NOT NULL, key text NOT NULL, fingerprint text NOT NULL, "
        "status integer NOT NULL, headers text NOT NULL, body bytea NOT NULL, "
        "created_at double precision NOT NULL, PRIMARY KEY (principal, key))"
    ).format(**t.ids())


def create_responses_index(t: EventTables) -> Composed:
    return SQL("CREATE INDEX IF NOT EXISTS {index} ON {schema}.{responses} (created_at)").format(
        **t.ids()
    )


def create_hashes_table(t: EventTables) -> Composed:
    """Tamper evidence: the hash chain, written with the events."""
    return SQL(
        "CREATE TABLE IF NOT EXISTS {schema}.{hashes} ("
        "originator_id {id_type} NOT NULL, originator_version bigint NOT NULL, "
        "hash bytea NOT NULL, PRIMARY KEY (originator_id, originator_version))"
    ).format(**t.ids())


def create_append_function(t: EventTables) -> Composed:
    """One write, one statement: the response, the hashes, then the table lock, the
    notification and the events; the statement's commit releases the lock."""
    return SQL(
        "CREATE OR REPLACE FUNCTION {schema}.{append}("
        "p_events {schema}.{event_type}[], p_hashes bytea[], p_lock_timeout text, "
        "r_principal text, r_key text, r_fingerprint text, r_status integer, "
        "r_headers text, r_body bytea, r_created_at double precision) "
        "RETURNS SETOF bigint LANGUAGE plpgsql AS $fn$ BEGIN "
        "IF r_principal IS NOT NULL THEN "
        "INSERT INTO {schema}.{responses} "
        "(principal, key, fingerprint, status, headers, body, created_at) VALUES "
        "(r_principal, r_key, r_fingerprint, r_status, r_headers, r_body, r_created_at); "
        "END IF; "
        "INSERT INTO {schema}.{hashes} (originator_id, originator_version, hash) "
        "SELECT (p_events[i]).originator_id, (p_events[i]).originator_version, p_hashes[i] "
        "FROM generate_subscripts(p_events, 1) AS i; "
        "PERFORM set_config('lock_timeout', p_lock_timeout, true); "
        "LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE; "
        "NOTIFY {channel}; "
        "RETURN QUERY INSERT INTO {schema}.{events} "
        "(originator_id, originator_version, topic, state) "
        "SELECT (e).originator_id, (e).originator_version, (e).topic, (e).state "
        "FROM unnest(p_events) AS e RETURNING notification_id; "
        "END $fn$"
    ).format(**t.ids())


def create_guard_function(t: EventTables) -> Composed:
    return SQL(
        "DO $do$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_proc p "
        "JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = {schema_name} AND p.proname = {guard_name}) THEN "
        "CREATE FUNCTION {schema}.{guard}() RETURNS trigger "
        "LANGUAGE plpgsql AS $fn$ BEGIN "
        "RAISE EXCEPTION 'stored history is append-only: % on % refused', "
        "TG_OP, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege'; "
        "END $fn$; END IF; END $do$"
    ).format(**t.ids(), schema_name=Literal(t.schema), guard_name=Literal(t.guard))


def create_guard_trigger(t: EventTables, table: str, suffix: str) -> Composed:
    """`_no_change` refuses UPDATE and DELETE of a row, `_no_truncate` TRUNCATE."""
    when, level = (
        ("UPDATE OR DELETE", "ROW") if suffix == "_no_change" else ("TRUNCATE", "STATEMENT")
    )
    trigger = f"{table}{suffix}"[:63]
    return SQL(
        "DO $do$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = {schema_name} AND c.relname = {table_name} "
        "AND t.tgname = {trigger_name}) THEN "
        "CREATE TRIGGER {trigger} BEFORE " + when + " ON {schema}.{table} "
        "FOR EACH " + level + " EXECUTE FUNCTION {schema}.{guard}(); "
        "END IF; END $do$"
    ).format(
        **t.ids(),
        table=Identifier(table),
        table_name=Literal(table),
        schema_name=Literal(t.schema),
        trigger=Identifier(trigger),
        trigger_name=Literal(trigger),
    )


# Events and their hashes ------------------------------------------------------------------


def append(t: EventTables) -> Composed:
    """Calls `<events>_append`: (events, hashes, lock timeout, the 7 response columns)."""
    return SQL(
        "SELECT * FROM {schema}.{append}(%s::{schema}.{event_type}[], %s::bytea[], %s, "
        "%s, %s, %s, %s, %s, %s, %s) AS ids(notification_id)"
    ).format(**t.ids())


def select_previous_hash(t: EventTables) -> Composed:
    return SQL(
        "SELECT hash FROM {schema}.{hashes} WHERE originator_id = %s "
        "AND originator_version < %s ORDER BY originator_version DESC LIMIT 1"
    ).format(**t.ids())


def select_hashes(t: EventTables) -> Composed:
    return SQL(
        "SELECT originator_version, hash FROM {schema}.{hashes} "
        "WHERE originator_id = %s ORDER BY originator_version"
    ).format(**t.ids())


# Idempotency keys -------------------------------------------------------------------------


def insert_response(t: EventTables) -> Composed:
    return SQL(
        "INSERT INTO {schema}.{responses} "
        "(principal, key, fingerprint, status, headers, body, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)"
    ).format(**t.ids())


def insert_response_if_absent(t: EventTables) -> Composed:
    return insert_response(t) + SQL(" ON CONFLICT DO NOTHING")


def select_response_and_claim(t: EventTables) -> Composed:
    """The key's response (if any) and the fingerprint of its claim (if any): (p, k, p, k)."""
    return SQL(
        "SELECT r.fingerprint, r.status, r.headers, r.body, "
        "(SELECT c.fingerprint FROM {schema}.{claims} c "
        "WHERE c.principal = %s AND c.key = %s) AS claimed_by "
        "FROM (SELECT 1) AS one LEFT JOIN {schema}.{responses} r "
        "ON r.principal = %s AND r.key = %s"
    ).format(**t.ids())


def select_stored_response(t: EventTables) -> Composed:
    return SQL(
        "SELECT status, headers, body FROM {schema}.{responses} WHERE principal = %s AND key = %s"
    ).format(**t.ids())


def upsert_claim(t: EventTables) -> Composed:
    return SQL(
        "INSERT INTO {schema}.{claims} "
        "(principal, key, fingerprint, token, lease_until, created_at) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (principal, key) DO UPDATE SET "
        "fingerprint = excluded.fingerprint, token = excluded.token, "
        "lease_until = excluded.lease_until, created_at = excluded.created_at"
    ).format(**t.ids())


def release_claim(t: EventTables) -> Composed:
    """Deletes the claim row and unlocks the key's advisory lock: (p, k, token, lock key)."""
    return SQL(
        "WITH gone AS (DELETE FROM {schema}.{claims} "
        "WHERE principal = %s AND key = %s AND token = %s) "
        "SELECT pg_advisory_unlock(%s) AS unlocked"
    ).format(**t.ids())


def purge_responses(t: EventTables) -> Composed:
    return SQL("DELETE FROM {schema}.{responses} WHERE created_at < %s").format(**t.ids())


def purge_claims(t: EventTables) -> Composed:
    return SQL("DELETE FROM {schema}.{claims} WHERE created_at < %s").format(**t.ids())
