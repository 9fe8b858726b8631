"""The results of `python -m bench` as Markdown and as a plot (PNG, with matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

LIMIT_SERIES = {
    "raw_psycopg": "raw read + append, psycopg threads",
    "raw_psycopg_locked": "raw read + append + table lock, psycopg threads",
    "pgbench": "raw read + append, pgbench",
    "pgbench_locked": "raw read + append + table lock, pgbench",
    "eventsourcing_save": "eventsourcing save() of one event",
    "service_recorder_save": "save() of one event on this service's recorder (hash chain, "
    "one statement)",
}


def limit_at(results: dict[str, Any], clients: str) -> float | None:
    """The raw read-and-append limit at a concurrency: the best of psycopg and pgbench."""
    lim = results.get("limits") or {}
    rates = [
        series[clients]["per_s"]
        for name in ("raw_psycopg", "pgbench")
        if (series := lim.get(name)) and clients in series
    ]
    return max(rates) if rates else None


def _ratio(value: float, limit: float | None) -> str:
    return f"{value / limit:.3f}" if limit else "n/a"


def _lat(r: dict[str, Any]) -> str:
    return f"{r['p50_ms']} | {r['p99_ms']} | {r['p999_ms']}"


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# Benchmark ({results['mode']}), {results['at']}",
        "",
        f"Commit {m['commit']}{' (with local changes)' if m['dirty'] else ''}; "
        f"{m['cores']} cores ({m['cpu']}); PostgreSQL {m['postgres']} "
        f"({', '.join(f'{k}={v}' for k, v in sorted(m['postgres_settings'].items()))}). "
        f"The dispute service ran as {results['plan']['service_processes']} processes "
        f"(DISPUTES_PROCESSES), the gateway as one. "
        f"Took {results['seconds']['total']} s. Latencies in ms.",
        "",
    ]
    lim = results.get("limits")
    if lim:
        clients = list(next(s for s in lim.values() if s))
        lines += ["## The limits", "", "| series | " + " | ".join(
            f"{c} client{'s' if c != '1' else ''}: per s (p50 / p99 / p99.9)" for c in clients
        ) + " |", "|---|" + "---|" * len(clients)]  # fmt: skip
        for name, label in LIMIT_SERIES.items():
            series = lim.get(name)
            if not series:
                lines.append(f"| {label} | " + " | ".join("not installed" for _ in clients) + " |")
                continue
            cells = [
                f"{series[c]['per_s']:,.0f} ({series[c]['p50_ms']} / {series[c]['p99_ms']} / "
                f"{series[c]['p999_ms']})"
                for c in clients
            ]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "The limit below is the better of the two raw series at each concurrency.",
            "",
        ]
    svc = results.get("service")
    if svc:
        lines += [
            "## The service: seed-case mix, closed loop",
            "",
            "| target | clients | commands/s | p50 | p99 | p99.9 | ÷ limit | errors | "
            "CPU ms per command | all cores could serve | machine busy |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for target, points in svc["closed"].items():
            for clients, r in points.items():
                cpu = ", ".join(f"{k} {v}" for k, v in r["cpu_ms_per_command"].items())
                lines.append(
                    f"| {target} | {clients} | {r['per_s']:,.1f} | {_lat(r)} | "
                    f"{_ratio(r['per_s'], limit_at(results, clients))} | {r['errors']} | "
                    f"{cpu}; total {r['cpu_ms_per_command_total']} | "
                    f"{r['cpu_bound_per_s']:,.0f}/s | {r['machine_busy_pct']}% |"
                )
        lines += [
            "",
            "CPU per command counts every process on the machine that serves it, the load "
            "generator and PostgreSQL included; 'all cores could serve' is the core count "
            "divided by that total: the ceiling when CPU is the only limit.",
            "",
            "## Open loop at half the peak (latency from the scheduled send time)",
            "",
            *(
                [
                    f"Started once the webhook and JetStream deliveries had caught up with the "
                    f"closed loop ({svc['settled_s']} s after it).",
                    "",
                ]
                if "settled_s" in svc
                else []
            ),
            "| target | scheduled per s | answered | p50 | p99 | p99.9 | worst lag behind "
            "schedule (ms) | errors |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for target, r in svc["open"].items():
            lines.append(
                f"| {target} | {r['target_per_s']} | {r['count']:,} | {_lat(r)} | "
                f"{r['max_behind_schedule_ms']} | {r['errors']} |"
            )
        feed = svc["feed"]
        lines += [
            "",
            f"Feed during the load: a follower saw {feed['seen']:,} of {feed['stored']:,} "
            f"stored events, missed {feed['missed']}, ids strictly increasing: "
            f"{feed['strictly_increasing']}.",
            "",
            "## Memory: peak RSS under load (MiB)",
            "",
            "| process | OS processes | largest peak | sum of peaks |",
            "|---|---|---|---|",
            *(
                f"| {name} | {m['processes']} | {m['largest']} | {m['sum']} |"
                for name, m in svc["memory_mib"].items()
            ),
            "",
            "A uvicorn parent with its workers (and multiprocessing's resource tracker) counts "
            "as one process tree.",
            "",
        ]
        lines += _delivery(svc)
    lines += _versus(results)
    sc = results.get("scale")
    if sc:
        lines += [
            "## Scale",
            "",
            "| stored events | commands/s (1 client) | p50 | p99 | p99.9 |",
            "|---|---|---|---|---|",
        ]
        for stored, r in sc["latency"].items():
            lines.append(f"| {int(stored):,} | {r['per_s']} | {_lat(r)} |")
        lines += [
            "",
            "| load one case | with snapshots: p50 / p99 | without: p50 / p99 "
            "| the process's kept copy: p50 / p99 |",
            "|---|---|---|---|",
        ]
        for size, r in sc["load_case"].items():
            if not isinstance(r, dict) or "snapshots" not in r:
                continue
            s, n = r["snapshots"], r["no_snapshots"]
            k = r.get("kept")
            kept = f"{k['p50_ms']} / {k['p99_ms']}" if k else "not measured"
            lines.append(
                f"| {int(size):,} events | {s['p50_ms']} / {s['p99_ms']} | "
                f"{n['p50_ms']} / {n['p99_ms']} | {kept} |"
            )
        fr, rb = sc["feed_read"], sc["rebuild"]
        lines += [
            "",
            f"Feed read: {fr['events']:,} events at {fr['events_per_s']:,.0f} events/s. "
            f"Projection rebuild from zero: {rb['events']:,} events at "
            f"{rb['events_per_s']:,.0f} events/s.",
            "",
        ]
    if results.get("merkle"):
        from bench.merkle_log import markdown as merkle_markdown

        lines += merkle_markdown(results["merkle"])
    return "\n".join(lines) + "\n"


TARGET_LABELS = {
    "peer": "plain CRUD peer (FastAPI)",
    "floor": "bare-ASGI floor (same SQL, orjson)",
    "direct": "this service, direct",
    "gateway": "this service, through the gateway",
}


def _versus(results: dict[str, Any]) -> list[str]:
    out = results.get("peer")
    if not out:
        return []
    passes = len(out["passes"])
    lines = [
        f"## Beside the plain CRUD service: `{out['command']}`, closed loop",
        "",
        f"Medians over {passes} pass{'es' if passes != 1 else ''}; each ratio to the peer is "
        "taken within one pass (the ratios of every pass in brackets). Server CPU: the "
        "target's own processes per command (service and gateway through the gateway).",
        "",
        "| target | clients | commands/s | ÷ peer (each pass) | ÷ limit | server CPU ms per "
        "command | CPU ÷ peer | PostgreSQL CPU ms | p50 | p99 | errors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for clients, targets in out["summary"].items():
        for target, r in targets.items():
            tiers = ", ".join(f"{k} {v}" for k, v in r["server_cpu_ms"].items())
            if len(r["server_cpu_ms"]) > 1:
                tiers += f"; total {r['server_cpu_ms_total']}"
            each = ", ".join(f"{x:.2f}" for x in r["ratio_to_peer_each"])
            lines.append(
                f"| {TARGET_LABELS.get(target, target)} | {clients} | {r['per_s']:,.1f} | "
                f"{r['ratio_to_peer']:.2f} ({each}) | "
                f"{_ratio(r['per_s'], limit_at(results, clients))} | {tiers} | "
                f"{r['cpu_ratio_to_peer']:.2f} | {r['postgres_cpu_ms']} | {r['p50_ms']} | "
                f"{r['p99_ms']} | {r['errors']} |"
            )
    lines += [
        "",
        f"The peer and the floor each ran as {out['peer_processes']} uvicorn worker processes "
        f"({out.get('peer_pool_size', '?')} connections each), the dispute service as "
        f"{out['service_processes']} ({out.get('service_threads', '?')} threads each); each "
        "client posted to its own "
        f"{out['disputes_per_client']} disputes in turn. The peer: pydantic models, the "
        "gateway's bearer token checked in-process with PyJWT, an async psycopg 3 pool, one "
        "transaction of SELECT ... FOR UPDATE, UPDATE and INSERT of a history row, uvicorn's "
        "access log on (bench/peer.py). The floor: the same token check and transaction on "
        "bare ASGI with orjson, no log (bench/floor.py).",
        "",
    ]
    return lines


def _delivery(svc: dict[str, Any]) -> list[str]:
    out = svc.get("delivery")
    if not out:
        return []
    lines = [
        "## Events out: delivery lag under the closed loop (commit to receipt, ms)",
        "",
        "| clients | webhook: events | p50 | p99 | JetStream: events | p50 | p99 |",
        "|---|---|---|---|---|---|---|",
    ]
    webhook, jetstream = out.get("webhook_lag", {}), out.get("jetstream_lag")
    for clients in sorted(webhook.keys() | (jetstream or {}).keys(), key=int):
        w, j = webhook.get(clients), (jetstream or {}).get(clients)
        cells = [f"{w['count']:,} | {w['p50_ms']} | {w['p99_ms']}" if w else "- | - | -"]
        cells.append(
            f"{j['count']:,} | {j['p50_ms']} | {j['p99_ms']}"
            if j
            else ("not measured (no NATS) | | " if jetstream is None else "- | - | -")
        )
        lines.append(f"| {clients} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Lag: from the event's time (taken just before its commit) to the webhook "
        "receiver's 2xx, or to the JetStream consumer's receipt; the events of both "
        "targets' closed-loop runs at that concurrency, one webhook for every event.",
        "",
        "| webhooks replaying the feed | deliveries/s (one delivery process) | "
        "delivery process CPU ms per delivery |",
        "|---|---|---|",
    ]
    for t in out.get("throughput", []):
        lines.append(
            f"| {t['subscriptions']} | {t['per_s']:,.1f} | {t['delivery_cpu_ms_per_delivery']} |"
        )
    if catch_up := svc.get("jetstream_catch_up"):
        lines += [
            "",
            f"The JetStream relay published the {catch_up['events']:,} order registrations "
            f"at {catch_up['per_s']:,.0f} events/s.",
        ]
    return [*lines, ""]


def plot(results: dict[str, Any], path: Path) -> Path | None:
    """Throughput and p99 against concurrency; None when there is nothing to plot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, dict[str, dict[str, Any]]] = {}
    for name, label in LIMIT_SERIES.items():
        if data := (results.get("limits") or {}).get(name):
            series[label] = data
    for target, data in (results.get("service") or {}).get("closed", {}).items():
        series[f"service: {target}"] = data
        series[f"service: {target}, what the cores allow (CPU per command)"] = {
            c: {"per_s": r["cpu_bound_per_s"], "p99_ms": None} for c, r in data.items()
        }
    if not series:
        return None
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 6.4))
    for n, (label, data) in enumerate(series.items()):
        xs = [int(c) for c in data]
        ceiling = "allow" in label
        style = ":" if ceiling else "-o" if label.startswith("service") else "--."
        color = f"C{n % 10}"
        left.plot(xs, [data[c]["per_s"] for c in data], style, color=color, label=label)
        if not ceiling:
            right.plot(xs, [data[c]["p99_ms"] for c in data], style, color=color)
    for axes, title, unit in ((left, "throughput", "per second"), (right, "p99 latency", "ms")):
        axes.set_xscale("log", base=2)
        axes.set_yscale("log")
        axes.set_xlabel("concurrent clients")
        axes.set_ylabel(unit)
        axes.set_title(title)
        axes.grid(True, which="both", alpha=0.3)
    figure.legend(loc="lower center", ncol=2, fontsize=8, frameon=False)
    m = results["machine"]
    figure.suptitle(f"dispute service, commit {m['commit']}, {m['cores']} cores")
    figure.tight_layout(rect=(0, 0.22, 1, 1))
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
