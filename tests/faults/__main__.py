"""`make faults` (`python -m tests.faults [--down-seconds N] [--rounds N] [--root DIR]`):
injects every fault into the supervised stack on a private PostgreSQL cluster under a
retrying load and prints, per fault, the commands acknowledged, lost, duplicated,
refused but applied, the errors clients saw (by status) and the seconds from the
fault's end to the first success. A report, not a test: it asserts nothing.

`--root DIR` runs the stack from another checkout of the code (to measure an older
commit with this harness: `git worktree add /tmp/before <commit>`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .harness import FaultReport, available, run_all


def table(reports: list[FaultReport]) -> str:
    lines = [
        "| fault | acknowledged | lost | duplicated | refused but applied | gave up "
        "| client-visible errors (retried) | first success after the fault's end | "
        "slowest request |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in reports:
        v = r.verdict
        errors = ", ".join(f"{k}: {n}" for k, n in sorted(v.errors.items())) or "none"
        recovered = "never" if r.recovered_after is None else f"{r.recovered_after:.2f} s"
        lines.append(
            f"| {r.name} | {v.acknowledged} | {len(v.lost)} | {len(v.duplicated)} | "
            f"{len(v.refused_but_applied)} | {v.gave_up} | {errors} | {recovered} | "
            f"{r.longest_wait:.2f} s |"
        )
    notes = [f"- {r.name}: {r.note}" for r in reports if r.note]
    return "\n".join(lines + (["", *notes] if notes else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults")
    parser.add_argument("--down-seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--root", type=Path, default=None, help="the checkout to run")
    args = parser.parse_args(argv)
    why_not = available()
    if why_not is not None:
        print(f"fault injection cannot run here: {why_not}", file=sys.stderr)
        return 1
    reports = run_all(args.root, down_seconds=args.down_seconds, rounds=args.rounds)
    print(table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
