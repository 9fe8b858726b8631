"""The audit command: `python -m services.dispute.audit` (services.dispute.audit).

export --dispute ID [--out FILE] [--tree-size N]   a case, with its Merkle proofs
export --all --out FILE                            every aggregate
replay FILE                                        verify and replay, offline
verify --key VKEY --checkpoint FILE EXPORT         check against a held checkpoint
verify --key VKEY --checkpoint OLD --newer NEW --proof P
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import IO
from uuid import UUID

from .audit import (
    all_originator_ids,
    export_lines,
    read_chain,
    read_export,
    read_export_file,
    replay,
    tree_ids,
)
from .infrastructure.hashchain import originator_text as _originator


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
