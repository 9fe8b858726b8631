"""Where each tier's CPU goes under the benchmark's command load, with py-spy.

    python -m bench.profile [--target direct|gateway] [--clients 8] [--seconds 10]

Starts the stack (as `make bench` does), opens each client's disputes, sends
`POST /v1/disputes/{id}/messages` in a closed loop (bench/versus.py) and meanwhile samples
the dispute service's worker processes and the gateway with `py-spy record --gil` (only
the thread holding the GIL: where the Python CPU went, whatever the machine's load, which
would make threads waiting for a core look busy). Prints, per tier, the functions with the
largest share of samples: inclusive (anywhere on the stack) and self (the frame on top).
Writes the raw collapsed stacks to --out (a flame graph's input). A tool, not a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from bench.common import database_url
from bench.stack import running_stack
from bench.versus import (
    bearer,
    internal_headers,
    message_loop,
    open_service_disputes,
    parties,
)


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise SystemExit("py-spy is not installed: pip install -c requirements.lock -e '.[bench]'")
    return found


def record(pid: int, seconds: float, out: Path, rate: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [py_spy(), "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--gil",
         "--duration", str(int(seconds)), "--rate", str(rate), "--format", "raw",
         "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rstrip().rpartition(" ")
    return stack.split(";"), int(count)


def short(frame: str) -> str:
    """`function (path:line)` as `function (package/module.py)`."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/services/", "/shared/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def shares(path: Path, top: int) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        stack, count = frames(line)
        named = [short(f) for f in stack if " (" in f]
        total += count
        for name in set(named):
            inclusive[name] += count
        if named:
            own[named[-1]] += count

    def pct(count: int) -> float:
        return round(100 * count / max(total, 1), 1)

    return (
        total,
        [(n, pct(c)) for n, c in inclusive.most_common(top)],
        [(n, pct(c)) for n, c in own.most_common(top)],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--target", choices=("direct", "gateway"), default="gateway")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=45)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("bench/results/profile"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    url = database_url()
    who = parties(args.clients)
    with running_stack(url, processes=args.processes) as stack:
        disputes = open_service_disputes(stack, who)
        base, headers = (
            (stack.gateway_url, bearer(stack))
            if args.target == "gateway"
            else (stack.service_url, internal_headers)
        )
        message_loop(base, headers, who, disputes, 2.0, warmup=0)  # warm-up
        result: dict[str, object] = {}
        load = threading.Thread(
            target=lambda: result.update(
                message_loop(base, headers, who, disputes, args.seconds + 2, warmup=0)
            )
        )
        load.start()
        time.sleep(1)
        tiers = {"service": stack.processes["service"].pid}
        if args.target == "gateway":
            tiers["gateway"] = stack.processes["gateway"].pid
        recorders = {
            tier: record(pid, args.seconds, args.out / f"{args.target}-{tier}.txt", args.rate)
            for tier, pid in tiers.items()
        }
        for recorder in recorders.values():
            recorder.wait()
        load.join()
    print(f"{args.target}, {args.clients} clients: {result.get('per_s')} commands/s")
    for tier in recorders:
        total, inclusive, own = shares(args.out / f"{args.target}-{tier}.txt", args.top)
        print(f"\n## {tier}: {total} samples\n\ninclusive %:")
        for name, pct in inclusive:
            print(f"  {pct:5.1f}  {name}")
        print("\nself %:")
        for name, pct in own:
            print(f"  {pct:5.1f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
