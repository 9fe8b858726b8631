"""The Merkle log (services.dispute.transparency) at scale, on PostgreSQL.

Measures:

* tree maintenance: a scratch schema filled with N events (`bench.scale.fill`: real
  histories copied server-side), then the notary's `catch_up` from an empty tree, in
  events per second (leaf hashing, the right edge, the rows, one transaction a batch);
* storage: the tree's rows and on-disk bytes per event;
* a checkpoint at N events: the time to sign and publish it (file), and its size;
* proofs at N events: inclusion proofs of random events and consistency proofs between
  random sizes, read from the stored tree (time p50 / p99, hashes, bytes as JSON);
  each proof is verified, a wrong one would stop the run;
* the verification endpoint's work for one case (`check_case`: the case's leaves, the
  tree's root at the checkpoint, an inclusion proof per event);
* cost per command: the seed-case command mix (bench/load.py) straight to the dispute
  service, 8 clients, without the notary and then with it following the writes (every
  process's CPU per command, commands/s, latency).

A script, not a test:

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m bench.merkle_log [--events 1000000] [--seconds 8] [--only scale|cost]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import scale
from bench.common import database_url, latency_summary, persistence_env, scratch_schema
from services.dispute import merkle
from services.dispute.application import DisputeApplication
from services.dispute.transparency.checkpoint import Signer
from services.dispute.transparency.notary import CheckpointDirectory, Notary
from services.dispute.transparency.tree import TreeStore
from services.dispute.transparency.verify import check_case

PROOFS = 300


def _timed(call: Any) -> tuple[Any, float]:
    began = time.perf_counter()
    result = call()
    return result, time.perf_counter() - began


def tree_at_scale(url: str, events: int, log: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with scratch_schema(url, "merkle") as schema, tempfile.TemporaryDirectory() as tmp:
        out["fill"] = scale.fill(url, schema, events)
        log(f"  filled {out['fill']['events']:,} events in {out['fill']['seconds']} s")
        app = DisputeApplication(env=persistence_env(url, schema, pool_size=2))
        try:
            store = TreeStore(app.recorder.datastore)  # type: ignore[attr-defined]
            store.create_table()
            signer = Signer.generate("bench.local/log")
            notary = Notary(app, store, signer, CheckpointDirectory(Path(tmp)), batch_size=5000)
            appended, seconds = _timed(notary.catch_up)
            out["maintenance"] = {
                "events": appended,
                "seconds": round(seconds, 2),
                "events_per_s": round(appended / seconds),
            }
            log(f"  tree maintenance: {out['maintenance']}")
            out["storage"] = storage(url, schema, appended)
            log(f"  storage: {out['storage']}")

            checkpoint, seconds = _timed(lambda: notary.checkpoint(force=True))
            note = notary.directory.latest() or ""
            out["checkpoint"] = {
                "tree_size": checkpoint.size,
                "sign_and_publish_ms": round(seconds * 1000, 2),
                "note_bytes": len(note.encode()),
            }
            log(f"  checkpoint: {out['checkpoint']}")
            size, root = checkpoint.size, checkpoint.root
            rng = random.Random(17)
            inclusion_times, inclusion_lengths = [], []
            for index in rng.sample(range(size), min(PROOFS, size)):
                proof, seconds = _timed(lambda i=index: store.inclusion_proof(i, size))
                leaf = store.leaves(index, 1)[0].leaf_hash
                if not merkle.verify_inclusion(index, size, leaf, proof, root):
                    raise AssertionError(f"inclusion proof of {index} does not verify")
                inclusion_times.append(seconds)
                inclusion_lengths.append(len(proof))
            out["inclusion_proof"] = _proof_figures(inclusion_times, inclusion_lengths)
            log(f"  inclusion proof: {out['inclusion_proof']}")
            consistency_times, consistency_lengths = [], []
            for first in rng.sample(range(1, size), min(PROOFS, size - 1)):
                proof, seconds = _timed(lambda f=first: store.consistency_proof(f, size))
                old = store.root_at(first)
                if not merkle.verify_consistency(first, size, proof, old, root):
                    raise AssertionError(f"consistency proof {first} -> {size} fails")
                consistency_times.append(seconds)
                consistency_lengths.append(len(proof))
            out["consistency_proof"] = _proof_figures(consistency_times, consistency_lengths)
            log(f"  consistency proof: {out['consistency_proof']}")

            # A whole dispute (6 events) from the middle of the log.
            middle = store.leaves(size // 2, 100)
            case_id = next(
                (f.originator_id for f in middle if f.version >= 6), middle[0].originator_id
            )
            events = list(app.recorder.select_events(case_id))
            times = []
            for _ in range(20):
                report, seconds = _timed(
                    lambda: check_case(
                        store, notary.directory, lambda: signer.verifier, case_id, events
                    )
                )
                assert not report.findings, report.findings
                times.append(seconds)
            out["verify_case"] = {"events": len(events), **latency_summary(times)}
            log(f"  verification of one case: {out['verify_case']}")
        finally:
            app.close()
    return out


def _proof_figures(times: list[float], lengths: list[int]) -> dict[str, Any]:
    longest = max(lengths)
    return {
        **latency_summary(times),
        "hashes_max": longest,
        "bytes_max": longest * 32,
        "json_bytes_max": len(json.dumps(["00" * 32] * longest)),
    }


def storage(url: str, schema: str, events: int) -> dict[str, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        sizes = {}
        for table in ("merkle_leaves", "merkle_nodes"):
            name = sql.Identifier(schema, table)
            rows = conn.execute(sql.SQL("SELECT COUNT(*) FROM {}").format(name)).fetchone()
            size = conn.execute(
                "SELECT pg_total_relation_size(%s::regclass)", (f'"{schema}"."{table}"',)
            ).fetchone()
            sizes[table] = {"rows": rows[0] if rows else 0, "bytes": size[0] if size else 0}
    total = sum(s["bytes"] for s in sizes.values())
    return {**sizes, "bytes_per_event": round(total / max(1, events), 1)}


def cost_per_command(url: str, seconds: float, log: Any) -> dict[str, Any]:
    """The command mix without and then with the notary following the writes."""
    from bench.__main__ import internal_headers, measured, orders_for
    from bench.load import CaseSupply, closed_loop
    from bench.stack import application, register_orders, running_stack

    out: dict[str, Any] = {}
    with running_stack(url, threads=8) as stack:  # 8 clients; spare the shared server
        for other in ("projector", "worker", "delivery"):  # alone with the service: only
            stack.stop(other)  # the notary differs between the two runs
        app = application(stack)
        refs = orders_for("merkle", 8000)
        register_orders(app, refs)
        app.close()
        supply = CaseSupply(refs)
        closed_loop(stack.service_url, internal_headers, supply, 4, 1)  # warm-up
        for label in ("without_notary", "with_notary"):
            if label == "with_notary":
                stack.start("notary")
                time.sleep(2)  # its start-up and catch-up on the warm-up's events
            result = measured(
                stack,
                lambda: closed_loop(stack.service_url, internal_headers, supply, 8, seconds),
            )
            out[label] = {
                key: result[key]
                for key in ("per_s", "p50_ms", "p99_ms", "errors", "cpu_ms_per_command",
                            "cpu_ms_per_command_total")
            }  # fmt: skip
            log(f"  {label}: {out[label]}")
        lag = _lag(stack)
        out["notary_lag_events_after_load"] = lag
    return out


def _lag(stack: Any) -> int:
    from bench.stack import application

    app = application(stack)
    try:
        store = TreeStore(app.recorder.datastore)  # type: ignore[attr-defined]
        deadline = time.monotonic() + 30
        while True:
            stored = app.recorder.max_notification_id() or 0
            behind = max(0, stored - store.state().position)
            if behind == 0 or time.monotonic() > deadline:
                return behind
            time.sleep(0.2)
    finally:
        app.close()


def measure(url: str, events: int, seconds: float, log: Any) -> dict[str, Any]:
    return {
        "scale": tree_at_scale(url, events, log),
        "cost": cost_per_command(url, seconds, log),
    }


def markdown(results: dict[str, Any]) -> list[str]:
    sc, cost = results["scale"], results["cost"]
    m, st, cp = sc["maintenance"], sc["storage"], sc["checkpoint"]
    inc, con, vc = sc["inclusion_proof"], sc["consistency_proof"], sc["verify_case"]
    before, after = cost["without_notary"], cost["with_notary"]
    return [
        "## Merkle log",
        "",
        f"At {m['events']:,} events: tree maintenance {m['events_per_s']:,} events/s "
        f"({m['seconds']} s from an empty tree); {st['bytes_per_event']} bytes per event on "
        f"disk ({st['merkle_leaves']['rows']:,} leaves, {st['merkle_nodes']['rows']:,} "
        "stored nodes).",
        "",
        "| at that size | p50 | p99 | size |",
        "|---|---|---|---|",
        f"| signed checkpoint (sign + publish) | {cp['sign_and_publish_ms']} ms | | "
        f"{cp['note_bytes']} bytes |",
        f"| inclusion proof | {inc['p50_ms']} ms | {inc['p99_ms']} ms | {inc['hashes_max']} "
        f"hashes, {inc['bytes_max']} bytes |",
        f"| consistency proof | {con['p50_ms']} ms | {con['p99_ms']} ms | {con['hashes_max']}"
        f" hashes, {con['bytes_max']} bytes |",
        f"| verification of a {vc['events']}-event case | {vc['p50_ms']} ms | {vc['p99_ms']} ms"
        " | |",
        "",
        "| commands, 8 clients, direct | commands/s | p50 | p99 | CPU ms per command |",
        "|---|---|---|---|---|",
        f"| without the notary | {before['per_s']} | {before['p50_ms']} ms | "
        f"{before['p99_ms']} ms | {before['cpu_ms_per_command_total']} |",
        f"| with the notary following | {after['per_s']} | {after['p50_ms']} ms | "
        f"{after['p99_ms']} ms | {after['cpu_ms_per_command_total']} (notary "
        f"{after['cpu_ms_per_command'].get('notary', 0)}) |",
        "",
        f"The notary was {cost['notary_lag_events_after_load']} events behind after the load.",
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.merkle_log")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--only", choices=("scale", "cost"), help="measure only this part")
    args = parser.parse_args()

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    url = database_url()
    if args.only:
        part = tree_at_scale(url, args.events, log) if args.only == "scale" else None
        cost = cost_per_command(url, args.seconds, log) if args.only == "cost" else None
        print(json.dumps({"scale": part, "cost": cost}, indent=2))
        return 0
    results = measure(url, args.events, args.seconds, log)
    print("\n".join(markdown(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
