"""The Merkle log (issue 17): every event in one RFC 9162 tree, signed checkpoints
published outside the database, proofs over HTTP, and every attack of a database
administrator on real histories detected and named: through the verification endpoint
and offline, by `python -m services.dispute.audit verify` against a held checkpoint."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from psycopg import sql
from pydantic import SecretStr

from services.dispute import audit, merkle
from services.dispute.application import DisputeApplication
from services.dispute.transparency.checkpoint import Checkpoint, Signer, open_checkpoint
from services.dispute.transparency.notary import Notary, RefusedCheckpoint, build
from services.dispute.transparency.tree import event_hash, leaf_of
from tests.conftest import connect

from .http_support import Api, running_service, settings_for
from .test_audit import EVENTS, HASHES, SQLITE_EVENTS, key, make_case

TREE_TABLES = ("merkle_leaves", "merkle_nodes", "merkle_state")


@dataclass
class Log:
    """A service and its notary on one fresh store, with the key and directory."""

    api: Api
    notary: Notary
    signer: Signer
    backend: dict[str, str]
    overrides: dict[str, Any]
    directory: Path

    def checkpoint(self) -> str:
        self.notary.catch_up()
        self.notary.checkpoint(force=True)
        note = self.notary.directory.latest()
        assert note is not None
        return note

    def verification(self, dispute_id: str) -> dict[str, Any]:
        reply = self.api.call("GET", f"/v1/disputes/{dispute_id}/verification", "auditor", "au")
        assert reply.status_code == 200, reply.text
        return dict(reply.json())


@pytest.fixture
def log(backend: dict[str, str], tmp_path: Path) -> Iterator[Log]:
    signer = Signer.generate("disputes.test/log")
    overrides: dict[str, Any] = {
        "checkpoint_key": SecretStr(signer.encode()),
        "checkpoint_dir": tmp_path / "checkpoints",
        "threads": 4,  # the server is shared: small pools
    }
    with running_service(backend, **overrides) as api:
        settings = settings_for(backend, **overrides)
        app = DisputeApplication(env={**settings.persistence_env(), "POSTGRES_POOL_SIZE": "2"})
        try:
            notary = build(app, settings)
            yield Log(api, notary, signer, backend, overrides, tmp_path / "checkpoints")
        finally:
            app.close()


def kinds(findings: list[dict[str, Any]]) -> set[tuple[str, int | None]]:
    return {(f["kind"], f["version"]) for f in findings}


# Tampering, as an administrator with every privilege -------------------------------------


@contextmanager
def administrator(backend: dict[str, str]) -> Iterator[Callable[..., Any]]:
    """`run(sql, params)` on the raw store, every trigger of the history and the tree
    disabled on PostgreSQL (as the tables' owner can)."""
    if backend["PERSISTENCE_MODULE"].endswith("sqlite"):
        path = Path(backend["SQLITE_DBNAME"]).parent / "disputes.db"
        with sqlite3.connect(path) as db:
            yield lambda q, p=(): db.execute(
                q.replace("%s", "?")
                .replace(EVENTS, SQLITE_EVENTS)
                .replace(HASHES, f"{SQLITE_EVENTS}_hashes"),
                p,
            ).fetchall()
        return
    conninfo = {k: backend[f"POSTGRES_{k.upper()}"] for k in ("host", "port", "user", "password")}
    conninfo["dbname"] = backend["POSTGRES_DBNAME"]
    with connect(conninfo) as conn:
        conn.execute(
            sql.SQL("SET search_path TO {}").format(sql.Identifier(backend["POSTGRES_SCHEMA"]))
        )
        tables = (EVENTS, HASHES, *TREE_TABLES)
        for table in tables:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")

        def run(q: str, p: tuple[Any, ...] = ()) -> Any:
            cur = conn.execute(q, p)
            return cur.fetchall() if cur.description else None

        try:
            yield run
        finally:
            for table in tables:
                conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


WHERE = "WHERE originator_id = %s AND originator_version = %s"


def state_at(run: Any, k: Any, version: int) -> bytes:
    return bytes(run(f"SELECT state FROM {EVENTS} {WHERE}", (k, version))[0][0])


def set_state(run: Any, k: Any, version: int, state: bytes) -> None:
    run(f"UPDATE {EVENTS} SET state = %s {WHERE}", (state, k, version))


def delete_event(run: Any, k: Any, version: int) -> None:
    run(f"DELETE FROM {EVENTS} {WHERE}", (k, version))
    run(f"DELETE FROM {HASHES} {WHERE}", (k, version))


def rewrite_tail(run: Any, k: Any, dispute_id: str, versions: list[int]) -> None:
    """Changes the states of `versions` and recomputes the case's hash chain over them."""
    for version in versions:
        state = json.loads(state_at(run, k, version))
        state["body"] = f"rewritten {version}"
        set_state(run, k, version, json.dumps(state).encode())
    events = [
        audit.StoredEvent(UUID(dispute_id), v, t, bytes(s))
        for v, t, s in run(
            f"SELECT originator_version, topic, state FROM {EVENTS} WHERE originator_id = %s "
            "ORDER BY originator_version",
            (k,),
        )
    ]
    for event, digest in zip(events, audit.chain(events), strict=True):
        run(
            f"UPDATE {HASHES} SET hash = %s {WHERE}",
            (digest, k, event.originator_version),
        )


# The tree and its checkpoints -------------------------------------------------------------


def test_the_tree_holds_every_event_once_in_feed_order_and_its_root_is_signed(log: Log) -> None:
    first = make_case(log.api, messages=2)
    second = make_case(log.api, messages=1)
    app = log.notary.app
    notifications = app.recorder.select_notifications(start=1, limit=1000)
    assert log.notary.run_once() == len(notifications) == 2 * 2 + 4 + 3  # orders too
    assert log.notary.run_once() == 0  # nothing twice
    store = log.notary.store
    leaves = store.leaves(0, 1000)
    assert [f.notification_id for f in leaves] == [n.id for n in notifications]
    for leaf, n in zip(leaves, notifications, strict=True):
        assert leaf.leaf_hash == leaf_of(audit._originator(n.originator_id), n.originator_version,
                                         event_hash(n))  # fmt: skip
    expected = merkle.root_of([f.leaf_hash for f in leaves])
    assert store.state().root == expected == store.root_at(len(leaves))

    note = log.checkpoint()
    checkpoint = open_checkpoint(note, log.signer.verifier)
    assert (checkpoint.size, checkpoint.root) == (len(leaves), expected)
    assert note.startswith(f"disputes.test/log\n{len(leaves)}\n")
    assert "\n\n\u2014 disputes.test/log " in note
    assert (log.directory / f"{len(leaves):020d}.checkpoint").read_text() == note

    # Over HTTP: the checkpoint, an inclusion proof of every event of a case, consistency.
    reply = log.api.call("GET", "/v1/audit/checkpoint", "auditor", "au").json()
    assert reply["note"] == note and reply["tree_size"] == len(leaves)
    assert reply["key_hash"] == log.signer.verifier.key_hash.hex()
    for version in (1, 2, 3, 4):
        proof = log.api.call(
            "GET", f"/v1/audit/inclusion?aggregate_id={first}&version={version}", "agent", "a1"
        ).json()
        assert merkle.verify_inclusion(
            proof["leaf_index"], proof["tree_size"], bytes.fromhex(proof["leaf_hash"]),
            [bytes.fromhex(p) for p in proof["proof"]], checkpoint.root,
        )  # fmt: skip
    make_case(log.api, messages=0)
    newer = open_checkpoint(log.checkpoint(), log.signer.verifier)
    consistency = log.api.call(
        "GET", f"/v1/audit/consistency?first={checkpoint.size}", "auditor", "au"
    ).json()
    assert consistency["second"] == newer.size > checkpoint.size
    assert merkle.verify_consistency(
        checkpoint.size, newer.size, [bytes.fromhex(p) for p in consistency["proof"]],
        checkpoint.root, newer.root,
    )  # fmt: skip
    body = log.verification(second)
    assert body["intact"] is True and body["findings"] == []
    assert body["checkpoint_size"] == newer.size and body["proved_events"] == 3

    # Refusals: a buyer may not read proofs; bad input is a 422 naming the field.
    assert log.api.call("GET", "/v1/audit/checkpoint", "buyer", "b1").status_code == 403
    bad = log.api.call("GET", "/v1/audit/inclusion?aggregate_id=x&version=1", "auditor", "au")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "aggregate_id"
    bad = log.api.call("GET", "/v1/audit/consistency?first=0", "auditor", "au")
    assert bad.status_code == 422
    missing = log.api.call("GET", "/v1/audit/checkpoint?tree_size=3", "auditor", "au")
    assert missing.status_code == 404


def test_a_stopped_batch_appends_nothing_and_the_next_run_appends_it_once(log: Log) -> None:
    make_case(log.api, messages=1)
    store = log.notary.store
    state = store.state()
    notifications = log.notary.app.recorder.select_notifications(start=1, limit=100)
    from services.dispute.transparency.tree import PositionMoved, leaves_for

    after, leaves, nodes = leaves_for(state, [(n.id, n) for n in notifications])
    store.append(state, after, leaves, nodes)
    with pytest.raises(PositionMoved):  # a second notary with the same batch loses
        store.append(state, after, leaves, nodes)
    assert log.notary.run_once() == 0
    assert store.count_leaves() == (len(notifications), len(notifications))


# Attacks ------------------------------------------------------------------------------


@dataclass
class Scene:
    log: Log
    dispute_id: str  # the case attacked: 6 events
    other_id: str
    k: Any


def attack_changed_byte(s: Scene, run: Any) -> None:
    state = bytearray(state_at(run, s.k, 3))
    state[len(state) // 2] ^= 0x01
    set_state(run, s.k, 3, bytes(state))


def attack_swapped_events(s: Scene, run: Any) -> None:
    third, fifth = state_at(run, s.k, 3), state_at(run, s.k, 5)
    set_state(run, s.k, 3, fifth)
    set_state(run, s.k, 5, third)


def attack_deleted_middle_event(s: Scene, run: Any) -> None:
    delete_event(run, s.k, 4)


def attack_deleted_last_event(s: Scene, run: Any) -> None:
    delete_event(run, s.k, 6)


def attack_deleted_case(s: Scene, run: Any) -> None:
    for version in range(1, 7):
        delete_event(run, s.k, version)


def attack_rewritten_tail(s: Scene, run: Any) -> None:
    rewrite_tail(run, s.k, s.dispute_id, [5, 6])


def attack_rewritten_tail_and_tree(s: Scene, run: Any) -> None:
    rewrite_tail(run, s.k, s.dispute_id, [5, 6])
    for version in (5, 6):
        event = audit.StoredEvent(
            UUID(s.dispute_id), version, *run(
                f"SELECT topic, state FROM {EVENTS} {WHERE}", (s.k, version))[0]
        )  # fmt: skip
        digest = event_hash(
            audit.StoredEvent(event.originator_id, version, event.topic, bytes(event.state))
        )
        run(
            "UPDATE merkle_leaves SET event_hash = %s, leaf_hash = %s "
            "WHERE originator_id = %s AND originator_version = %s",
            (digest, leaf_of(s.dispute_id, version, digest), s.dispute_id, version),
        )


EXPECTED: dict[str, set[tuple[str, int | None]]] = {
    "changed_byte": {("chain_broken", 3), ("event_changed", 3)},
    "swapped_events": {("chain_broken", 3), ("events_swapped", 3), ("events_swapped", 5)},
    "deleted_middle_event": {("chain_broken", 4), ("event_deleted", 4)},
    "deleted_last_event": {("history_truncated", 6)},
    "deleted_case": {("case_deleted", 1)},
    "rewritten_tail": {("event_changed", 5), ("event_changed", 6)},
}
ATTACKS: dict[str, Callable[[Scene, Any], None]] = {
    "changed_byte": attack_changed_byte,
    "swapped_events": attack_swapped_events,
    "deleted_middle_event": attack_deleted_middle_event,
    "deleted_last_event": attack_deleted_last_event,
    "deleted_case": attack_deleted_case,
    "rewritten_tail": attack_rewritten_tail,
}


def cli_env(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(log.backend, **log.overrides)
    for name in list(os.environ):
        if name.startswith("DISPUTES_"):
            monkeypatch.delenv(name)
    if settings.database_url:
        monkeypatch.setenv("DATABASE_URL", settings.database_url)
        monkeypatch.setenv("DISPUTES_DB_SCHEMA", settings.db_schema)
    else:
        monkeypatch.delenv("DATABASE_URL", raising=False)
        monkeypatch.setenv("DISPUTES_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DISPUTES_THREADS", "2")
    monkeypatch.setenv("DISPUTES_CHECKPOINT_KEY", log.signer.encode())
    monkeypatch.setenv("DISPUTES_CHECKPOINT_DIR", str(log.directory))


def verify_offline(
    tmp_path: Path, log: Log, held: str, export: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[dict[str, Any]], list[dict[str, Any]]]:
    """`audit verify` in this process (no database is touched: the subprocess test
    below proves it runs without one): (exit code, cases, log findings)."""
    held_file = tmp_path / "held.checkpoint"
    held_file.write_text(held)
    capsys.readouterr()
    code = audit.main(
        ["verify", "--key", log.signer.verifier.encode(), "--checkpoint", str(held_file),
         str(export)]
    )  # fmt: skip
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    return code, [r for r in lines if "id" in r], lines[-1]["log"]


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_each_attack_on_a_real_history_is_detected_and_named(
    log: Log,
    attack: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dispute_id = make_case(log.api, messages=4)
    other = make_case(log.api, messages=1)
    held = log.checkpoint()  # the auditor keeps this one
    before = log.verification(dispute_id)
    assert before["intact"] is True and before["proved_events"] == 6
    scene = Scene(log, dispute_id, other, key(log.backend, dispute_id))

    with administrator(log.backend) as run:
        ATTACKS[attack](scene, run)

    # Through the endpoint.
    body = log.verification(dispute_id)
    assert body["intact"] is False
    assert kinds(body["findings"]) == EXPECTED[attack]
    assert body["first_invalid_version"] == min(v for _, v in EXPECTED[attack] if v)
    assert log.verification(other)["intact"] is True  # the other case is untouched

    # Offline: an export taken now, against the checkpoint held from before.
    cli_env(log, monkeypatch)
    export = tmp_path / "case.jsonl"
    assert audit.main(["export", "--dispute", dispute_id, "--out", str(export)]) == 0
    code, cases, log_findings = verify_offline(tmp_path, log, held, export, capsys)
    assert code == 1 and log_findings == []
    [case] = cases
    assert kinds(case["findings"]) == EXPECTED[attack]
    assert case["intact"] is False


def test_a_rewritten_tail_with_the_tree_rewritten_too_fails_the_signed_checkpoint(
    log: Log, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dispute_id = make_case(log.api, messages=4)
    held = log.checkpoint()
    with administrator(log.backend) as run:
        attack_rewritten_tail_and_tree(Scene(log, dispute_id, "", key(log.backend, dispute_id)),
                                       run)  # fmt: skip

    body = log.verification(dispute_id)
    assert body["intact"] is False
    found = kinds(body["findings"])
    assert {("not_in_checkpoint", 5), ("not_in_checkpoint", 6), ("tree_rewritten", None)} <= found
    # The notary's right edge is its own: what it signs next still holds the events
    # as written, so the rewritten leaves stay out of every later checkpoint.
    make_case(log.api, messages=0)
    log.checkpoint()
    later = log.verification(dispute_id)
    assert {("not_in_checkpoint", 5), ("not_in_checkpoint", 6)} <= kinds(later["findings"])

    cli_env(log, monkeypatch)
    export = tmp_path / "case.jsonl"
    size = str(open_checkpoint(held, log.signer.verifier).size)
    args = ["export", "--dispute", dispute_id, "--out", str(export), "--tree-size", size]
    assert audit.main(args) == 0
    code, [case], log_findings = verify_offline(tmp_path, log, held, export, capsys)
    assert code == 1 and log_findings == []
    # The rewritten leaves fail, and so do the proofs computed over them.
    assert {("not_in_checkpoint", 5), ("not_in_checkpoint", 6)} <= kinds(case["findings"])
    assert {f["kind"] for f in case["findings"]} == {"not_in_checkpoint"}


def test_a_deleted_case_with_its_leaves_is_caught_by_the_whole_log_export(
    log: Log, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dispute_id = make_case(log.api, messages=1)
    other = make_case(log.api, messages=1)
    held = log.checkpoint()
    k = key(log.backend, dispute_id)
    with administrator(log.backend) as run:
        for version in range(1, 4):
            delete_event(run, k, version)
        run("DELETE FROM merkle_leaves WHERE originator_id = %s", (dispute_id,))

    body = log.verification(other)
    assert body["intact"] is False
    assert ("tree_damaged", None) in kinds(body["findings"])

    cli_env(log, monkeypatch)
    export = tmp_path / "all.jsonl"
    assert audit.main(["export", "--all", "--out", str(export)]) == 0
    code, _, log_findings = verify_offline(tmp_path, log, held, export, capsys)
    assert code == 1
    assert [f["kind"] for f in log_findings] == ["tree_rewritten"]


def test_a_rolled_back_tree_is_refused_by_the_notary_and_caught_by_the_auditor(
    log: Log, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dispute_id = make_case(log.api, messages=2)
    held = log.checkpoint()
    old = open_checkpoint(held, log.signer.verifier)
    with administrator(log.backend) as run:  # back to empty, and the case rewritten
        run("DELETE FROM merkle_leaves")
        run("DELETE FROM merkle_nodes")
        run("UPDATE merkle_state SET size = 0, notification_id = 0, frontier = %s", (b"",))
        rewrite_tail(run, key(log.backend, dispute_id), dispute_id, [4])

    body = log.verification(dispute_id)
    assert ("tree_rolled_back", None) in kinds(body["findings"])
    log.notary.catch_up()  # the tree grows again, over the rewritten history
    with pytest.raises(RefusedCheckpoint, match="rewritten"):
        log.notary.checkpoint(force=True)

    # A notary that lost its directory signs the rewritten tree: the auditor's
    # consistency check against the checkpoint held catches it.
    make_case(log.api, messages=0)
    log.notary.catch_up()
    fresh = build(
        log.notary.app,
        settings_for(log.backend, **{**log.overrides, "checkpoint_dir": tmp_path / "lost"}),
    )
    fresh.checkpoint(force=True)
    newer_note = fresh.directory.latest()
    assert newer_note is not None
    newer = open_checkpoint(newer_note, log.signer.verifier)
    proof = {
        "first": old.size,
        "second": newer.size,
        "proof": [p.hex() for p in fresh.store.consistency_proof(old.size, newer.size)],
    }
    (tmp_path / "held.checkpoint").write_text(held)
    (tmp_path / "newer.checkpoint").write_text(newer_note)
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    capsys.readouterr()
    code = audit.main(
        ["verify", "--key", log.signer.verifier.encode(), "--checkpoint",
         str(tmp_path / "held.checkpoint"), "--newer", str(tmp_path / "newer.checkpoint"),
         "--proof", str(tmp_path / "proof.json")]
    )  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and [f["kind"] for f in result["findings"]] == ["tree_inconsistent"]


def test_a_forged_checkpoint_is_named_by_the_endpoint_and_offline(
    log: Log, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dispute_id = make_case(log.api, messages=1)
    held = log.checkpoint()
    real = open_checkpoint(held, log.signer.verifier)
    # Someone without the key writes a checkpoint of a bigger, other tree, signed with
    # a key of the same name.
    impostor = Signer.generate(log.signer.name)
    forged = Checkpoint(real.origin, real.size + 5, bytes(32), real.time).sign(impostor)
    (log.directory / f"{real.size + 5:020d}.checkpoint").write_text(forged)

    body = log.verification(dispute_id)
    assert kinds(body["findings"]) == {("checkpoint_invalid", None)}
    reply = log.api.call("GET", "/v1/audit/checkpoint", "auditor", "au")
    assert reply.status_code == 409 and reply.json()["type"].endswith("checkpoint_invalid")

    # Offline: a held checkpoint whose root was changed under the real signature.
    changed = held.replace(held.split("\n")[2], "A" * 43 + "=")
    cli_env(log, monkeypatch)
    export = tmp_path / "case.jsonl"
    (log.directory / f"{real.size + 5:020d}.checkpoint").unlink()
    assert audit.main(["export", "--dispute", dispute_id, "--out", str(export)]) == 0
    code, _, log_findings = verify_offline(tmp_path, log, changed, export, capsys)
    assert code == 1 and [f["kind"] for f in log_findings] == ["checkpoint_invalid"]


def test_the_offline_verifier_needs_no_database(
    log: Log, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dispute_id = make_case(log.api, messages=2)
    held = log.checkpoint()
    cli_env(log, monkeypatch)
    export = tmp_path / "case.jsonl"
    assert audit.main(["export", "--dispute", dispute_id, "--out", str(export)]) == 0
    (tmp_path / "held.checkpoint").write_text(held)
    (tmp_path / "log.vkey").write_text(log.signer.verifier.encode() + "\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if "DATABASE" not in k and not k.startswith(("PG", "DISPUTES_"))
    }
    done = subprocess.run(
        [sys.executable, "-m", "services.dispute.audit", "verify", "--key",
         str(tmp_path / "log.vkey"), "--checkpoint", str(tmp_path / "held.checkpoint"),
         str(export)],
        capture_output=True, text=True, env=env, timeout=60, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    case = json.loads(done.stdout.splitlines()[0])
    assert case["intact"] is True and case["proved_events"] == 4 and case["events"] == 4
