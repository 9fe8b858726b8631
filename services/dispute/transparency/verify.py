"""What the tree says about one case, compared with its stored (or exported) history.

The verification endpoint (`check_case`, on the service's store) and the offline
verifier (`verify_export`, `verify_consistency`: no database, no service) both call
`compare`. Each finding names its
kind and, where there is one, the version:

- `event_changed`: the event stored at this version is not the one the tree holds;
- `events_swapped`: the event stored at this version is the tree's event of another;
- `event_deleted`: the tree holds this version, the history does not (a middle one);
- `history_truncated`: the tree holds this version and the history ends before it
  (its last events, a ruling or a refund, were deleted);
- `case_deleted`: the tree holds the case, the history holds none of it;
- `event_not_in_tree`: the history holds a version the tree skipped (inserted later).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import StoredEvent

from services.dispute import merkle

from .checkpoint import CheckpointError, Verifier, open_checkpoint
from .notary import CheckpointDirectory
from .tree import TreeDamaged, TreeStore, event_hash, leaf_of


@dataclass(frozen=True)
class Finding:
    kind: str
    version: int | None
    detail: str


def compare(
    events: Sequence[StoredEvent], tree: Iterable[tuple[int, bytes]]
) -> tuple[list[Finding], int]:
    """Findings about `events` (one aggregate's stored history) against `tree` (the
    tree's (version, event hash) pairs for it); and how many events are beyond the
    tree's newest version of the case (not yet appended: not a finding)."""
    in_tree = dict(tree)
    stored = {int(e.originator_version): e for e in events}
    findings: list[Finding] = []
    if in_tree and not stored:
        return [
            Finding(
                "case_deleted",
                min(in_tree),
                f"the tree holds {len(in_tree)} events of the case; none is stored",
            )
        ], 0
    newest = max(in_tree, default=0)
    last_stored = max(stored, default=0)
    for version in sorted(in_tree):
        if version not in stored:
            if version > last_stored:
                findings.append(
                    Finding(
                        "history_truncated",
                        version,
                        f"the tree holds versions up to {newest}; the history ends at "
                        f"{last_stored}",
                    )
                )
                break
            findings.append(
                Finding("event_deleted", version, f"version {version} is in the tree, not stored")
            )
    changed = [v for v, e in sorted(stored.items()) if v in in_tree and event_hash(e) != in_tree[v]]
    by_hash = {digest: v for v, digest in in_tree.items()}
    for version in changed:
        event = stored[version]
        moved = None
        for other in in_tree:
            if other != version:
                relabelled = StoredEvent(event.originator_id, other, event.topic, event.state)
                if by_hash.get(event_hash(relabelled)) == other:
                    moved = other
                    break
        if moved is not None:
            findings.append(
                Finding(
                    "events_swapped",
                    version,
                    f"version {version} holds the event the tree has as version {moved}",
                )
            )
        else:
            findings.append(
                Finding("event_changed", version, f"version {version} differs from the tree's")
            )
    for version in sorted(stored):
        if version not in in_tree and version < newest:
            findings.append(
                Finding(
                    "event_not_in_tree",
                    version,
                    f"version {version} is stored but the tree skipped it",
                )
            )
    pending = sum(1 for v in stored if v > newest)
    findings.sort(key=lambda f: (f.version or 0, f.kind))
    return findings, pending


@dataclass
class CaseReport:
    findings: list[Finding]
    checkpoint_size: int | None
    proved: int
    pending: int


def check_case(
    store: TreeStore,
    directory: CheckpointDirectory,
    verifier: Callable[[], Verifier],
    aggregate_id: str,
    events: Sequence[StoredEvent],
) -> CaseReport:
    """The service's check of one case: its history against the tree's leaves, the
    tree against the newest checkpoint published outside the database, and each of the
    case's leaves proved included in that checkpoint."""
    leaves = store.leaves_of(aggregate_id)
    findings, pending = compare(events, [(leaf.version, leaf.event_hash) for leaf in leaves])
    note = directory.latest()
    if note is None:
        return CaseReport(findings, None, 0, pending)
    try:
        checkpoint = open_checkpoint(note, verifier())
    except CheckpointError as exc:
        findings.append(Finding("checkpoint_invalid", None, str(exc)))
        return CaseReport(findings, None, 0, pending)
    size = checkpoint.size
    proved = 0
    try:
        state = store.state()
        count, span = store.count_leaves()
        if state.size < size or span < size:
            findings.append(
                Finding(
                    "tree_rolled_back",
                    None,
                    f"the tree holds {min(state.size, span)} events; the signed checkpoint "
                    f"has {size}",
                )
            )
            return CaseReport(findings, size, 0, pending)
        if count != span:
            findings.append(
                Finding("tree_damaged", None, f"{span - count} leaves of the tree were deleted")
            )
        if store.root_at(size) != checkpoint.root:
            findings.append(
                Finding(
                    "tree_rewritten",
                    None,
                    f"the tree's root at {size} events is not the signed checkpoint's",
                )
            )
        for leaf in leaves:
            if leaf.index >= size:
                continue
            proof = store.inclusion_proof(leaf.index, size)
            recomputed = leaf_of(leaf.originator_id, leaf.version, leaf.event_hash)
            if merkle.verify_inclusion(leaf.index, size, recomputed, proof, checkpoint.root):
                proved += 1
            else:
                findings.append(
                    Finding(
                        "not_in_checkpoint",
                        leaf.version,
                        f"the tree's leaf for version {leaf.version} is not in the signed "
                        f"checkpoint of {size} events",
                    )
                )
    except TreeDamaged as exc:
        findings.append(Finding("tree_damaged", None, str(exc)))
    findings.sort(key=lambda f: (f.version or 0, f.kind))
    return CaseReport(findings, size, proved, pending)


# Offline: an export and checkpoints the auditor holds ------------------------------------


def verify_export(export: Any, held_note: str, verifier: Verifier) -> dict[str, Any]:
    """Checks an export (services.dispute.audit.read_export_file) against the signed
    checkpoint the auditor holds: both checkpoints' signatures, each of the tree's leaves
    of each case proved included (or, for a whole-log export, the root recomputed from
    every leaf), each case's history against those leaves, and each hash chain."""
    from services.dispute.audit import verify as verify_chain

    report: dict[str, Any] = {"findings": [], "cases": []}
    log_findings: list[Finding] = []
    try:
        held = open_checkpoint(held_note, verifier)
    except CheckpointError as exc:
        log_findings.append(Finding("checkpoint_invalid", None, f"the held checkpoint: {exc}"))
        report["findings"] = [f.__dict__ for f in log_findings]
        return report
    report["checkpoint_size"] = held.size
    if export.checkpoint is None:
        log_findings.append(Finding("no_proofs", None, "the export carries no checkpoint"))
    else:
        try:
            theirs = open_checkpoint(export.checkpoint, verifier)
        except CheckpointError as exc:
            log_findings.append(Finding("checkpoint_invalid", None, f"the export's: {exc}"))
        else:
            if theirs.size == held.size and theirs.root != held.root:
                log_findings.append(
                    Finding(
                        "tree_rewritten",
                        None,
                        f"the export's checkpoint of {held.size} events has another root than "
                        "yours: the log was rewritten",
                    )
                )
            elif theirs.size != held.size:
                log_findings.append(
                    Finding(
                        "checkpoint_mismatch",
                        None,
                        f"the export is proved against {theirs.size} events, yours has "
                        f"{held.size}: export with --tree-size {held.size}",
                    )
                )
    cases = export.cases
    whole_log = bool(cases) and all(
        c.tree is not None and all("proof" not in leaf for leaf in c.tree) for c in cases.values()
    )
    if whole_log:
        leaves: dict[int, bytes] = {}
        for key, case in cases.items():
            for leaf in case.tree or []:
                leaves[int(leaf["leaf_index"])] = leaf_of(
                    key, int(leaf["version"]), bytes.fromhex(leaf["event_hash"])
                )
        missing = [i for i in range(held.size) if i not in leaves]
        frontier: list[tuple[int, bytes]] = []
        for i in range(held.size):
            merkle.append_to_frontier(frontier, i, leaves.get(i, bytes(32)))
        if missing or merkle.frontier_root(frontier) != held.root:
            log_findings.append(
                Finding(
                    "tree_rewritten",
                    None,
                    f"the log's {held.size} leaves do not make the checkpoint's root"
                    + (f" ({len(missing)} missing)" if missing else ""),
                )
            )
        report["whole_log"] = True
    for key, case in cases.items():
        findings: list[Finding] = []
        chain = verify_chain(case.events, case.hashes)
        if not chain.intact:
            findings.append(
                Finding(
                    "chain_broken",
                    chain.first_invalid_version,
                    f"the hash chain breaks at version {chain.first_invalid_version}",
                )
            )
        proved = 0
        pending = 0
        if case.tree is None:
            findings.append(Finding("no_proofs", None, "the export has no tree leaves of the case"))
        else:
            authentic: list[tuple[int, bytes]] = []
            for leaf in case.tree:
                version, digest = int(leaf["version"]), bytes.fromhex(leaf["event_hash"])
                index = int(leaf["leaf_index"])
                ok = index < held.size and (
                    whole_log
                    or merkle.verify_inclusion(
                        index,
                        held.size,
                        leaf_of(key, version, digest),
                        [bytes.fromhex(p) for p in leaf.get("proof", [])],
                        held.root,
                    )
                )
                if ok:
                    authentic.append((version, digest))
                    proved += 1
                else:
                    findings.append(
                        Finding(
                            "not_in_checkpoint",
                            version,
                            f"the leaf of version {version} is not in your checkpoint",
                        )
                    )
            compared, pending = compare(case.events, authentic)
            findings += compared
        findings.sort(key=lambda f: (f.version or 0, f.kind))
        versions = [f.version for f in findings if f.version is not None]
        report["cases"].append(
            {
                "id": key,
                "intact": not findings,
                "events": len(case.events),
                "proved_events": proved,
                "pending_events": pending,
                "first_invalid_version": min(versions) if versions else None,
                "findings": [f.__dict__ for f in findings],
            }
        )
    report["findings"] = [f.__dict__ for f in log_findings]
    return report


def verify_consistency(
    older_note: str, newer_note: str, proof: Mapping[str, Any], verifier: Verifier
) -> list[Finding]:
    """Checks that the newer signed checkpoint extends the older one, with a consistency
    proof (GET /v1/audit/consistency)."""
    findings = []
    try:
        older = open_checkpoint(older_note, verifier)
    except CheckpointError as exc:
        return [Finding("checkpoint_invalid", None, f"the older checkpoint: {exc}")]
    try:
        newer = open_checkpoint(newer_note, verifier)
    except CheckpointError as exc:
        return [Finding("checkpoint_invalid", None, f"the newer checkpoint: {exc}")]
    if newer.size < older.size:
        return [
            Finding(
                "tree_rolled_back",
                None,
                f"the newer checkpoint has {newer.size} events, the older {older.size}",
            )
        ]
    if (int(proof.get("first", -1)), int(proof.get("second", -1))) != (older.size, newer.size):
        return [Finding("proof_mismatch", None, "the proof is not between these two sizes")]
    hashes = [bytes.fromhex(p) for p in proof.get("proof", [])]
    if not merkle.verify_consistency(older.size, newer.size, hashes, older.root, newer.root):
        findings.append(
            Finding(
                "tree_inconsistent",
                None,
                f"the tree of {newer.size} events does not extend the one of {older.size}: "
                "it was rolled back or rewritten",
            )
        )
    return findings
