"""Tamper evidence: a hash chain over each aggregate's stored events, and its verifier.

Every stored event carries `hash_n = sha256(hash_{n-1} || canonical(event_n))`, with
32 zero bytes before the first event; the recorders (services.dispute.infrastructure)
write it in the events' transaction. `canonical` is a fixed, length-prefixed encoding of
(originator_id, originator_version, topic, state), where state is the stored bytes.

This module touches no database: the service and the offline replayer
(`python -m services.dispute.audit replay FILE`) use the same `verify`.

CLI:
    python -m services.dispute.audit export --dispute ID [--out FILE] [--tree-size N]
    python -m services.dispute.audit export --all --out FILE
    python -m services.dispute.audit replay FILE
    python -m services.dispute.audit verify --key VKEY --checkpoint FILE EXPORT
    python -m services.dispute.audit verify --key VKEY --checkpoint OLD --newer NEW --proof P

An export also carries the Merkle log's evidence (services.dispute.transparency): a first
line `{"checkpoint": <signed note>}` and, on each event, its leaf index and inclusion
proof against that checkpoint; `verify` checks it offline against a checkpoint the
auditor holds.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent

GENESIS = bytes(32)


def _originator(originator_id: UUID | str) -> str:
    try:
        return str(UUID(str(originator_id)))
    except ValueError:
        return str(originator_id)


def canonical(event: StoredEvent) -> bytes:
    """A fixed byte encoding of one stored event: each part length-prefixed."""
    parts = (
        _originator(event.originator_id).encode(),
        str(int(event.originator_version)).encode(),
        event.topic.encode(),
        bytes(event.state),
    )
    return b"".join(len(p).to_bytes(8, "big") + p for p in parts)


def link(previous: bytes, event: StoredEvent) -> bytes:
    return hashlib.sha256(previous + canonical(event)).digest()


def chain(events: Iterable[StoredEvent], previous: bytes = GENESIS) -> list[bytes]:
    """The hashes of consecutive events of one aggregate, after `previous`."""
    hashes = []
    for event in events:
        previous = link(previous, event)
        hashes.append(previous)
    return hashes


@dataclass(frozen=True)
class Verification:
    intact: bool
    events: int
    head: bytes | None  # the recorded chain head (the last stored hash)
    first_invalid_version: int | None


def verify(events: Sequence[StoredEvent], hashes: Mapping[int, bytes]) -> Verification:
    """Recomputes the chain of one aggregate's events (in stored order) against the
    stored hashes (by version). Names the first version that does not verify: whose
    recomputed hash differs or is missing, that is missing from the events (a gap, a
    deleted event) or out of order."""
    head = hashes[max(hashes)] if hashes else None
    previous = GENESIS
    bad: int | None = None
    for expected, event in enumerate(events, start=1):
        version = int(event.originator_version)
        if version != expected:
            bad = min(version, expected)
            break
        previous = link(previous, event)
        if hashes.get(version) != previous:
            bad = version
            break
    else:
        beyond = [v for v in hashes if v > len(events)]
        if beyond:  # a hash recorded for an event that is no longer stored
            bad = min(beyond)
    return Verification(bad is None, len(events), head, bad)


# Export and offline replay --------------------------------------------------------------


def export_lines(events: Iterable[StoredEvent], hashes: Mapping[int, bytes]) -> Iterator[str]:
    for event in events:
        recorded = hashes.get(int(event.originator_version))
        yield json.dumps(
            {
                "originator_id": _originator(event.originator_id),
                "originator_version": int(event.originator_version),
                "topic": event.topic,
                "state": base64.b64encode(bytes(event.state)).decode(),
                "hash": recorded.hex() if recorded is not None else None,
            },
            sort_keys=True,
        )


@dataclass
class Case:
    """One aggregate's records read back from an export file."""

    events: list[StoredEvent]
    hashes: dict[int, bytes]
    # The Merkle log's leaves of the case, as the exporting service's tree holds them:
    # {"version", "event_hash" (hex), "leaf_index", "proof" (hex list, against the
    # export's checkpoint; absent in a whole-log export)}. None: no tree evidence.
    tree: list[dict[str, Any]] | None = None


@dataclass
class Export:
    cases: dict[str, Case]
    checkpoint: str | None  # the signed note the proofs are against


def read_export(lines: Iterable[str]) -> dict[str, Case]:
    return read_export_file(lines).cases


def read_export_file(lines: Iterable[str]) -> Export:
    cases: dict[str, Case] = {}
    checkpoint = None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if "checkpoint" in row:
                checkpoint = str(row["checkpoint"])
                continue
            if "case_tree" in row:
                case = cases.setdefault(_originator(row["case_tree"]), Case([], {}))
                case.tree = [dict(leaf) for leaf in row["leaves"]]
                continue
            originator_id = _originator(row["originator_id"])
            version = int(row["originator_version"])
            event = StoredEvent(
                originator_id=UUID(originator_id),
                originator_version=version,
                topic=str(row["topic"]),
                state=base64.b64decode(row["state"], validate=True),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"line {number}: not an exported event ({exc})") from None
        case = cases.setdefault(originator_id, Case([], {}))
        case.events.append(event)
        if row.get("hash"):
            case.hashes[version] = bytes.fromhex(row["hash"])
    return Export(cases, checkpoint)


def replay(cases: Mapping[str, Case]) -> list[dict[str, Any]]:
    """Verifies each case's chain and rebuilds it with the application's own mapper and
    aggregate classes over an in-memory store: no database, no service."""
    from services.dispute.application import DisputeApplication

    app = DisputeApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    results = []
    try:
        for originator_id, case in cases.items():
            verification = verify(case.events, case.hashes)
            result: dict[str, Any] = {
                "id": originator_id,
                "intact": verification.intact,
                "events": verification.events,
                "head": verification.head.hex() if verification.head else None,
                "first_invalid_version": verification.first_invalid_version,
            }
            try:
                ordered = sorted(case.events, key=lambda e: e.originator_version)
                app.recorder.insert_events(ordered)
                aggregate: Any = app.repository.get(UUID(originator_id))
                result.update(final_state(aggregate))
            except Exception as exc:  # a tampered event may not even decode
                result["error"] = f"cannot replay: {type(exc).__name__}: {exc}"
            results.append(result)
    finally:
        app.close()
    return results


def final_state(aggregate: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"type": type(aggregate).__name__, "version": aggregate.version}
    for name in ("state", "outcome", "refund"):
        if hasattr(aggregate, name):
            value = getattr(aggregate, name)
            state[name] = _plain(value)
    return state


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "value") and isinstance(value.value, (str, int)):
        return value.value  # an enum
    for attr in ("amount", "currency"):
        if not hasattr(value, attr):
            return str(value)
    return {"amount": _plain(value.amount), "currency": str(value.currency)}


def _export(args: argparse.Namespace, out: IO[str]) -> int:
    from services.dispute.application import DisputeApplication
    from services.dispute.settings import load_settings
    from services.dispute.transparency.notary import CheckpointDirectory
    from services.dispute.transparency.tree import TreeStore

    settings = load_settings()
    app = DisputeApplication(env=settings.persistence_env(), policy=settings.policy)
    try:
        store = TreeStore(app.recorder.datastore)  # type: ignore[attr-defined]
        if settings.create_tables:
            store.create_table()
        directory = CheckpointDirectory(settings.checkpoints_path)
        note = directory.read(args.tree_size) if args.tree_size else directory.latest()
        if note is None:
            print(
                "no signed checkpoint"
                + (f" of size {args.tree_size}" if args.tree_size else "")
                + ": exporting without the Merkle log's proofs",
                file=sys.stderr,
            )
            if args.tree_size:
                return 2
        else:
            out.write(json.dumps({"checkpoint": note}) + "\n")
        size = int(note.split("\n")[1]) if note else 0
        if args.all:
            ids = list(dict.fromkeys([*all_originator_ids(app.recorder), *tree_ids(store)]))
        else:
            ids = [UUID(args.dispute)]
        count = 0
        for originator_id in ids:
            events, hashes = read_chain(app.recorder, originator_id)
            leaves = [f for f in store.leaves_of(_originator(originator_id)) if f.index < size]
            if not events and not leaves and not args.all:
                print(f"no such dispute: {args.dispute}", file=sys.stderr)
                return 2
            if note is not None:
                tree = [
                    {
                        "version": f.version,
                        "event_hash": f.event_hash.hex(),
                        "leaf_index": f.index,
                        **(
                            {}
                            if args.all
                            else {"proof": [p.hex() for p in store.inclusion_proof(f.index, size)]}
                        ),
                    }
                    for f in leaves
                ]
                out.write(json.dumps({"case_tree": str(originator_id), "leaves": tree}) + "\n")
            for line in export_lines(events, hashes):
                out.write(line + "\n")
                count += 1
        print(f"exported {count} events of {len(ids)} aggregates", file=sys.stderr)
        return 0
    finally:
        app.close()


def tree_ids(store: Any, page: int = 10_000) -> Iterator[UUID]:
    """Every aggregate the Merkle log holds, in feed order (a deleted case too)."""
    start = 0
    while leaves := store.leaves(start, page):
        for leaf in leaves:
            yield UUID(leaf.originator_id)
        start = leaves[-1].index + 1


def all_originator_ids(recorder: Any, page: int = 500) -> Iterator[UUID]:
    seen: set[str] = set()
    start = None
    while True:
        notifications = recorder.select_notifications(start, page, inclusive_of_start=start is None)
        if not notifications:
            return
        for n in notifications:
            key = _originator(n.originator_id)
            if key not in seen:
                seen.add(key)
                yield UUID(key)
        start = notifications[-1].id


def read_chain(recorder: Any, originator_id: UUID) -> tuple[list[StoredEvent], dict[int, bytes]]:
    """An aggregate's stored events and hashes, read consistently: hashes before and
    after the events must agree (a commit adds both at once), else read again."""
    for _ in range(5):
        before = dict(recorder.select_hashes(originator_id))
        events = list(recorder.select_events(originator_id))
        after = dict(recorder.select_hashes(originator_id))
        if before == after:
            return events, after
    return events, after


def _verify(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Offline: no database, no service; exit 1 if anything is found, 2 on bad input."""
    from services.dispute.transparency.checkpoint import CheckpointError, Verifier
    from services.dispute.transparency.verify import verify_consistency, verify_export

    if bool(args.newer) == bool(args.file) or bool(args.newer) != bool(args.proof):
        parser.error("verify takes an export FILE, or --newer CHECKPOINT with --proof FILE")
    try:
        text = args.key
        if os.path.exists(text):
            with open(text, encoding="utf-8") as key_file:
                text = key_file.read().strip()
        key = Verifier.decode(text)
        with open(args.checkpoint, encoding="utf-8") as held_file:
            held = held_file.read()
        if args.newer:
            with open(args.newer, encoding="utf-8") as newer_file:
                newer = newer_file.read()
            with open(args.proof, encoding="utf-8") as proof_file:
                proof = json.load(proof_file)
            findings = [f.__dict__ for f in verify_consistency(held, newer, proof, key)]
            print(json.dumps({"consistent": not findings, "findings": findings}, sort_keys=True))
            return 1 if findings else 0
        with open(args.file, encoding="utf-8") as lines:
            export = read_export_file(lines)
    except (OSError, ValueError, CheckpointError) as exc:
        print(f"verify: {exc}", file=sys.stderr)
        return 2
    report = verify_export(export, held, key)
    for case in report["cases"]:
        print(json.dumps(case, sort_keys=True))
    log_findings = report["findings"]
    print(json.dumps({"log": log_findings, "checkpoint_size": report.get("checkpoint_size")}))
    broken = [c for c in report["cases"] if not c["intact"]]
    print(
        f"{len(report['cases'])} aggregates against {report.get('checkpoint_size')} events: "
        + (
            "intact"
            if not broken and not log_findings
            else f"BROKEN ({len(broken)} cases, {len(log_findings)} log findings)"
        ),
        file=sys.stderr,
    )
    return 1 if broken or log_findings else 0


def _dispute_id(text: str) -> str:
    try:
        return str(UUID(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a dispute id (a UUID): {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.dispute.audit")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="export a case (or every case) as events")
    which = export.add_mutually_exclusive_group(required=True)
    which.add_argument("--dispute", type=_dispute_id, help="the dispute's id")
    which.add_argument("--all", action="store_true", help="every aggregate in the store")
    export.add_argument("--out", help="the file to write (standard output if absent)")
    export.add_argument(
        "--tree-size", type=int, help="prove against the checkpoint of this size (default newest)"
    )
    replayer = commands.add_parser("replay", help="verify and replay an export, offline")
    replayer.add_argument("file")
    verifier = commands.add_parser(
        "verify", help="check an export, or a newer checkpoint, against a held checkpoint"
    )
    verifier.add_argument("--key", required=True, help="the log's verifier key, or a file of it")
    verifier.add_argument("--checkpoint", required=True, help="the signed checkpoint you hold")
    verifier.add_argument("--newer", help="a newer signed checkpoint to check for consistency")
    verifier.add_argument("--proof", help="with --newer: the consistency proof (JSON)")
    verifier.add_argument("file", nargs="?", help="an export (export --dispute/--all)")
    args = parser.parse_args(argv)

    if args.command == "verify":
        return _verify(args, parser)

    if args.command == "export":
        if args.all and not args.out:
            parser.error("export --all needs --out FILE")
        if not args.out:
            return _export(args, sys.stdout)
        # Written aside and moved into place: a failed export leaves no partial file.
        partial = f"{args.out}.partial"
        try:
            with open(partial, "w", encoding="utf-8") as out:
                status = _export(args, out)
            if status == 0:
                os.replace(partial, args.out)
            return status
        except OSError as exc:
            print(f"export: {exc}", file=sys.stderr)
            return 2
        finally:
            if os.path.exists(partial):
                os.remove(partial)

    try:
        with open(args.file, encoding="utf-8") as lines:
            cases = read_export(lines)
    except (OSError, ValueError) as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 2
    results = replay(cases)
    for result in results:
        print(json.dumps(result, sort_keys=True))
    broken = [r for r in results if not r["intact"]]
    print(
        f"{len(results)} aggregates, chain "
        + ("intact" if not broken else f"BROKEN in {len(broken)}"),
        file=sys.stderr,
    )
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
