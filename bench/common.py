"""What every benchmark part shares: the database, a scratch schema, percentiles, /proc.

Linux only (peak RSS and CPU time are read from /proc); PostgreSQL only.
"""

from __future__ import annotations

import math
import os
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from services.dispute.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def persistence_env(url: str, schema: str, *, pool_size: int = 2) -> dict[str, str]:
    """eventsourcing's settings for an in-process DisputeApplication on `schema`: what the
    service's own settings make of that database and schema."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=url, db_schema=schema, threads=pool_size,
        pool_wait_seconds=10,
    )  # fmt: skip
    return settings.persistence_env()


def new_schema_name(prefix: str = "bench") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@contextmanager
def scratch_schema(url: str, prefix: str = "bench") -> Iterator[str]:
    """A new empty schema, dropped with everything in it afterwards (also on Ctrl-C)."""
    schema = new_schema_name(prefix)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        drop_schema(url, schema)


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (q in 0..100) of already sorted values; nan if none."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p90/p99/p99.9/max in milliseconds."""
    values = sorted(seconds)
    return {
        "p50_ms": round(percentile(values, 50) * 1000, 2),
        "p90_ms": round(percentile(values, 90) * 1000, 2),
        "p99_ms": round(percentile(values, 99) * 1000, 2),
        "p999_ms": round(percentile(values, 99.9) * 1000, 2),
        "max_ms": round(values[-1] * 1000, 2) if values else math.nan,
    }


@dataclass(frozen=True)
class ProcStats:
    peak_rss_mib: float  # of a process tree: the sum of its processes' peaks
    cpu_seconds: float
    processes: int = 1
    largest_peak_rss_mib: float = 0.0


def proc_stats(pid: int) -> ProcStats:
    """Peak resident set (VmHWM) and user+system CPU seconds of a live process."""
    hwm_kib = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm_kib = int(line.split()[1])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return ProcStats(peak_rss_mib=round(hwm_kib / 1024, 1), cpu_seconds=cpu)


def descendants(pid: int) -> list[int]:
    """The process and all its live descendants (uvicorn's worker processes, say)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            children = task / "children"
            if children.exists():
                queue += [int(c) for c in children.read_text().split()]
    return found


def tree_stats(pid: int) -> ProcStats:
    """proc_stats summed over a process and its descendants (peak RSS: sum of peaks)."""
    stats = []
    for each in descendants(pid):
        try:
            stats.append(proc_stats(each))
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile
    return ProcStats(
        peak_rss_mib=round(sum(s.peak_rss_mib for s in stats), 1),
        cpu_seconds=sum(s.cpu_seconds for s in stats),
        processes=len(stats),
        largest_peak_rss_mib=max((s.peak_rss_mib for s in stats), default=0.0),
    )


def postgres_cpu_seconds() -> float:
    """CPU seconds of every PostgreSQL server process on this machine (its backends come
    and go with connections: those that ended are not counted)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text or "(postmaster)" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def machine() -> dict[str, object]:
    """Cores, CPU model, commit and PostgreSQL version: what the figures depend on."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "unknown"

    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with psycopg.connect(database_url(), autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        settings: dict[str, str] = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('synchronous_commit', 'fsync', 'shared_buffers', 'max_connections')"
            ).fetchall()
        )
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "commit": git("rev-parse", "--short", "HEAD"),
        # Local changes to tracked files, other than earlier results.
        "dirty": bool(
            git("status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results")
        ),
        "postgres": row[0] if row else "unknown",
        "postgres_settings": settings,
    }


def cpu_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / ticks, sum(values) / ticks
