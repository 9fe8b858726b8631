"""Tamper evidence: the hash chain, its verifier, export and offline replay (issue 5)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import ProgrammingError
from psycopg import sql

from services.dispute import audit
from services.dispute.application import DisputeApplication
from tests.conftest import connect

from .http_support import Api, running_service, settings_for

# eventsourcing names the tables after the application on PostgreSQL only.
EVENTS = "disputes_events"
HASHES = "disputes_events_hashes"
SQLITE_EVENTS = "stored_events"


@pytest.fixture
def api(backend: dict[str, str]) -> Iterator[Api]:
    with running_service(backend) as service:
        yield service


def make_case(api: Api, messages: int = 4) -> str:
    dispute = api.open_dispute()
    api.act(dispute, "offer", "seller", "s1", {"type": "full_refund"})
    for n in range(messages):
        assert api.act(dispute, "messages", "buyer", "b1", {"body": f"m{n}"}).status_code < 300
    return str(dispute["id"])


def verification(api: Api, dispute_id: str, role: str = "auditor", who: str = "au1") -> Any:
    return api.call("GET", f"/v1/disputes/{dispute_id}/verification", role, who)


def check(backend: dict[str, str], dispute_id: str) -> audit.Verification:
    app = DisputeApplication(env=settings_for(backend).persistence_env())
    try:
        return audit.verify(*audit.read_chain(app.recorder, UUID(dispute_id)))
    finally:
        app.close()


# Tampering, as someone with direct access to the database would -----------------------


@contextmanager
def tampering(backend: dict[str, str]) -> Iterator[Any]:
    """A cursor-like `run(sql, params)` on the raw store, triggers disabled on PostgreSQL
    (which needs the table owner or a superuser: the app's statements are refused)."""
    if backend["PERSISTENCE_MODULE"].endswith("sqlite"):
        path = Path(backend["SQLITE_DBNAME"]).parent / "disputes.db"
        with sqlite3.connect(path) as db:
            yield lambda q, p=(): db.execute(
                q.replace("%s", "?").replace(EVENTS, SQLITE_EVENTS), p
            ).fetchall()
        return
    schema = backend["POSTGRES_SCHEMA"]
    conninfo = {
        "host": backend["POSTGRES_HOST"],
        "port": backend["POSTGRES_PORT"],
        "user": backend["POSTGRES_USER"],
        "password": backend["POSTGRES_PASSWORD"],
        "dbname": backend["POSTGRES_DBNAME"],
    }
    with connect(conninfo) as conn:
        conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
        conn.execute(f"ALTER TABLE {EVENTS} DISABLE TRIGGER USER")

        def run(q: str, p: tuple[Any, ...] = ()) -> Any:
            cur = conn.execute(q, p)
            return cur.fetchall() if cur.description else None

        try:
            yield run
        finally:
            conn.execute(f"ALTER TABLE {EVENTS} ENABLE TRIGGER USER")


def key(backend: dict[str, str], dispute_id: str) -> Any:
    sqlite = backend["PERSISTENCE_MODULE"].endswith("sqlite")
    return UUID(dispute_id).hex if sqlite else UUID(dispute_id)


def state_of(run: Any, k: Any, version: int) -> bytes:
    rows = run(
        f"SELECT state FROM {EVENTS} WHERE originator_id = %s AND originator_version = %s",
        (k, version),
    )
    return bytes(rows[0][0])


def set_state(run: Any, k: Any, version: int, state: bytes) -> None:
    run(
        f"UPDATE {EVENTS} SET state = %s WHERE originator_id = %s AND originator_version = %s",
        (state, k, version),
    )


# The chain ---------------------------------------------------------------------------------


def test_a_case_verifies_intact_over_http_and_its_head_is_the_last_hash(
    api: Api, backend: dict[str, str]
) -> None:
    dispute_id = make_case(api)
    reply = verification(api, dispute_id)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["intact"] is True and body["first_invalid_version"] is None
    assert body["events"] == 6 and body["dispute_id"] == dispute_id
    assert len(body["head"]) == 64
    assert verification(api, dispute_id, "buyer", "b1").json()["intact"] is True
    assert verification(api, dispute_id, "agent", "a1").status_code == 200
    assert verification(api, dispute_id, "buyer", "stranger").status_code == 404
    assert verification(api, dispute_id, "seller", "stranger").status_code == 404
    missing = "00000000-0000-0000-0000-000000000000"
    assert verification(api, missing).status_code == 404
    assert verification(api, "not-a-uuid").status_code == 404
    assert check(backend, dispute_id).head == bytes.fromhex(body["head"])


def test_a_flipped_byte_is_named_by_its_version(api: Api, backend: dict[str, str]) -> None:
    dispute_id = make_case(api)
    k = key(backend, dispute_id)
    with tampering(backend) as run:
        state = bytearray(state_of(run, k, 3))
        state[len(state) // 2] ^= 0x01
        set_state(run, k, 3, bytes(state))
    result = check(backend, dispute_id)
    assert (result.intact, result.first_invalid_version) == (False, 3)
    body = verification(api, dispute_id).json()
    assert body["intact"] is False and body["first_invalid_version"] == 3


@pytest.mark.parametrize("version", [1, 4, 6])
def test_a_deleted_event_is_named_by_its_version(
    api: Api, backend: dict[str, str], version: int
) -> None:
    dispute_id = make_case(api)
    k = key(backend, dispute_id)
    with tampering(backend) as run:
        run(
            f"DELETE FROM {EVENTS} WHERE originator_id = %s AND originator_version = %s",
            (k, version),
        )
    result = check(backend, dispute_id)
    assert (result.intact, result.first_invalid_version) == (False, version)


def test_two_swapped_events_are_named_by_the_first(api: Api, backend: dict[str, str]) -> None:
    dispute_id = make_case(api)
    k = key(backend, dispute_id)
    with tampering(backend) as run:
        third, fifth = state_of(run, k, 3), state_of(run, k, 5)
        set_state(run, k, 3, fifth)
        set_state(run, k, 5, third)
    result = check(backend, dispute_id)
    assert (result.intact, result.first_invalid_version) == (False, 3)


def test_two_swapped_versions_are_named_by_the_first(api: Api, backend: dict[str, str]) -> None:
    dispute_id = make_case(api)
    k = key(backend, dispute_id)
    where = "WHERE originator_id = %s AND originator_version = %s"
    with tampering(backend) as run:
        run(f"UPDATE {EVENTS} SET originator_version = 100 {where}", (k, 2))
        run(f"UPDATE {EVENTS} SET originator_version = 2 {where}", (k, 4))
        run(f"UPDATE {EVENTS} SET originator_version = 4 {where}", (k, 100))
    result = check(backend, dispute_id)
    assert (result.intact, result.first_invalid_version) == (False, 2)


@pytest.mark.postgres
def test_the_applications_role_cannot_change_or_delete_history(
    api: Api, backend: dict[str, str]
) -> None:
    if not backend["PERSISTENCE_MODULE"].endswith("postgres"):
        pytest.skip("PostgreSQL only")
    dispute_id = make_case(api, messages=0)
    app = DisputeApplication(env=settings_for(backend).persistence_env())
    schema = sql.Identifier(backend["POSTGRES_SCHEMA"])
    try:
        for table in (EVENTS, HASHES):
            target = sql.SQL("{}.{}").format(schema, sql.Identifier(table))
            for statement in (
                sql.SQL("UPDATE {} SET originator_version = originator_version").format(target),
                sql.SQL("DELETE FROM {} WHERE originator_id = %s").format(target),
                sql.SQL("TRUNCATE {}").format(target),
            ):
                with (
                    pytest.raises(ProgrammingError, match="append-only"),
                    app.recorder.datastore.get_connection() as conn,  # type: ignore[attr-defined]
                ):
                    params = (UUID(dispute_id),) if "%s" in statement.as_string() else None
                    conn.execute(statement, params)
    finally:
        app.close()
    assert check(backend, dispute_id).intact


# Export and offline replay ----------------------------------------------------------------


def cli_env(backend: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(backend)
    monkeypatch.delenv("DISPUTES_DATABASE_URL", raising=False)
    if settings.database_url:
        monkeypatch.setenv("DATABASE_URL", settings.database_url)
        monkeypatch.setenv("DISPUTES_DB_SCHEMA", settings.db_schema)
    else:
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.setenv("DISPUTES_DATA_DIR", str(settings.data_dir))


def replay_file(path: Path) -> tuple[int, list[dict[str, Any]]]:
    """Replays in a fresh process with no database configured."""
    env = {k: v for k, v in os.environ.items() if "DATABASE" not in k and not k.startswith("PG")}
    done = subprocess.run(
        [sys.executable, "-m", "services.dispute.audit", "replay", str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines()]


def test_an_exported_case_replays_offline_to_the_live_state(
    api: Api, backend: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dispute_id = make_case(api, messages=2)
    other = make_case(api, messages=0)
    api.act(other, "accept-offer", "buyer", "b1")
    cli_env(backend, monkeypatch)
    out = tmp_path / "case.jsonl"
    assert audit.main(["export", "--dispute", dispute_id, "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 4

    code, results = replay_file(out)

    assert code == 0
    live = api.call("GET", f"/v1/disputes/{dispute_id}", "agent", "a1").json()
    [replayed] = results
    assert replayed["intact"] is True and replayed["id"] == dispute_id
    assert replayed["state"] == live["state"] and replayed["version"] == live["version"] == 4
    assert replayed["outcome"] == live["outcome"]
    assert replayed["head"] == verification(api, dispute_id).json()["head"]

    everything = tmp_path / "all.jsonl"
    assert audit.main(["export", "--all", "--out", str(everything)]) == 0
    code, results = replay_file(everything)
    assert code == 0 and all(r["intact"] for r in results)
    by_id = {r["id"]: r for r in results}
    closed = api.call("GET", f"/v1/disputes/{other}", "agent", "a1").json()
    assert by_id[other]["state"] == closed["state"]
    assert by_id[other]["outcome"] == closed["outcome"]
    assert by_id[other]["version"] == closed["version"]


def test_a_tampered_export_is_reported_broken_at_its_version(
    api: Api, backend: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dispute_id = make_case(api, messages=3)
    cli_env(backend, monkeypatch)
    out = tmp_path / "case.jsonl"
    assert audit.main(["export", "--dispute", dispute_id, "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    row = json.loads(lines[2])
    state = json.loads(__import__("base64").b64decode(row["state"]))
    state["body"] = "changed" if state.get("body") != "changed" else "again"
    row["state"] = __import__("base64").b64encode(json.dumps(state).encode()).decode()
    lines[2] = json.dumps(row)
    out.write_text("\n".join(lines) + "\n")

    code, results = replay_file(out)

    assert code == 1
    assert results[0]["intact"] is False and results[0]["first_invalid_version"] == 3

    del lines[1]  # a deleted line
    out.write_text("\n".join(lines) + "\n")
    code, results = replay_file(out)
    assert code == 1 and results[0]["first_invalid_version"] == 2


def test_the_command_line_answers_mistakes_in_one_line_and_leaves_no_file(
    api: Api,
    backend: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli_env(backend, monkeypatch)
    exports = tmp_path / "exports"
    exports.mkdir()
    out = exports / "case.jsonl"
    with pytest.raises(SystemExit) as bad_id:
        audit.main(["export", "--dispute", "nope", "--out", str(out)])
    assert bad_id.value.code == 2
    assert "not a dispute id" in capsys.readouterr().err
    missing = str(uuid.uuid4())
    assert audit.main(["export", "--dispute", missing, "--out", str(out)]) == 2
    assert f"no such dispute: {missing}" in capsys.readouterr().err
    assert list(exports.iterdir()) == []
    assert audit.main(["replay", str(exports / "absent.jsonl")]) == 2
    assert "absent.jsonl" in capsys.readouterr().err


def test_a_replayed_refund_is_reported_as_json_values(
    api: Api, backend: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dispute_id = make_case(api, messages=0)
    api.act(dispute_id, "accept-offer", "buyer", "b1")
    api.act(dispute_id, "refund-failed", "service", "payments", {"reason": "card closed"})
    cli_env(backend, monkeypatch)
    out = tmp_path / "case.jsonl"
    assert audit.main(["export", "--dispute", dispute_id, "--out", str(out)]) == 0
    code, [replayed] = replay_file(out)
    assert code == 0 and replayed["state"] == "refund_pending"
    [failure] = replayed["refund"]["failures"]
    assert failure["reason"] == "card closed"
    assert datetime.fromisoformat(failure["at"]).tzinfo is not None
