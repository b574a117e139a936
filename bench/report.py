"""The results table (printed) and the JSON record (bench/results/ingest-<date>.json)."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

RESULTS_DIR = Path(__file__).parent / "results"
WORKER_PHASES = ("throughput", "backlog_drain", "latency")
TARGET_THROUGHPUT = 5000.0
TARGET_P99_S = 1.0


def machine() -> dict[str, Any]:
    """CPU count and model, memory, kernel."""
    model = "?"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
    }


def _rate(value: float) -> str:
    return f"{value:,.0f} uplinks/s"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, value, target or baseline) lines of the table."""
    tp, lat = results["throughput"], results["latency"]
    naive, ceiling = results["per_message_insert"], results["raw_copy"]
    worker_rate = tp["uplinks_per_s"]
    e2e = lat["publish_to_commit_s"]
    drain = results["backlog_drain"]
    rss_mib = max(results[p]["worker"]["peak_rss_kib"] for p in WORKER_PHASES) / 1024
    verdict = "met" if worker_rate >= TARGET_THROUGHPUT else "NOT met"
    p99_verdict = "met" if e2e["p99"] < TARGET_P99_S else "NOT met"
    mean_batch = tp["worker"]["received"] / max(tp["worker"]["batches"], 1)
    return [
        ("1. sustained throughput, publish → committed (worker process)", _rate(worker_rate),
         f"target ≥ {TARGET_THROUGHPUT:,.0f}: {verdict}"),
        ("   messages (uplinks + joins + statuses) → committed",
         f"{tp['messages_per_s']:,.0f} msg/s",
         f"{tp['uplinks']:,} uplinks, {tp['messages']:,} messages in {tp['elapsed_s']:.1f} s"),
        ("   publisher alone, first publish → last PUBACK", f"{tp['publish_rate']:,.0f} msg/s",
         "QoS 1, unpaced, 1 paho client"),
        ("   worker batches", f"{mean_batch:,.0f} msg/batch",
         f"{tp['worker']['batches']} commits (batch_size {results['options']['batch_size']})"),
        ("1b. backlog drain: worker alone, queued → committed", _rate(drain["uplinks_per_s"]),
         f"{drain['elapsed_s']:.1f} s from CONNACK, no publisher running"),
        ("    publisher alone, nobody consuming", f"{drain['publish_alone_rate']:,.0f} msg/s",
         "first publish → last PUBACK"),
        (f"2. latency at {lat['rate']:,.0f}/s, ChirpStack time → committed: p50",
         _ms(e2e["p50"]), f"{e2e['count']:,} uplinks over {lat['duration_s']:.0f} s"),
        ("   p99", _ms(e2e["p99"]), f"target < {TARGET_P99_S * 1000:,.0f} ms: {p99_verdict}"),
        ("   max", _ms(e2e["max"]), ""),
        ("   in-worker part (received → committed): p50 / p99",
         f"{_ms(lat['receive_to_commit_s']['p50'])} / {_ms(lat['receive_to_commit_s']['p99'])}",
         f"batch_max_age_ms {results['options']['batch_max_age_ms']}"),
        ("3. peak RSS of the worker process", f"{rss_mib:,.0f} MiB",
         "VmHWM, highest of the 3 worker runs"),
        ("4a. baseline: per-message INSERT + COMMIT", _rate(naive["uplinks_per_s"]),
         f"worker ×{worker_rate / naive['uplinks_per_s']:,.1f}; "
         f"{naive['commits_per_s']:,.0f} commits/s, {naive['elapsed_s']:.0f} s"),
        ("4b. baseline: raw COPY, no staging/conflicts", _rate(ceiling["uplinks_per_s"]),
         f"worker at {100 * worker_rate / ceiling['uplinks_per_s']:.0f} % of it"),
        ("    assemble() alone (parse + decode, 1 core)",
         f"{results['assemble']['messages_per_s']:,.0f} msg/s", "no I/O, no MQTT"),
    ]  # fmt: skip


def cpu_lines(results: dict[str, Any]) -> list[str]:
    """Where the CPU went during the two worker runs."""
    lines = []
    for phase in WORKER_PHASES:
        cpu, worker = results[phase]["cpu_s"], results[phase]["worker"]
        wall = cpu["wall"]
        parts = ", ".join(
            f"{name} {cpu[name] / wall:.2f}"
            for name in ("worker", "publisher", "mosquitto", "postgres", "others")
        )
        threads = {k: v for k, v in worker["thread_cpu"].items() if v >= 0.05}
        per_message = 1e6 * (threads.get("ingest-writer", 0) + threads.get("mqtt-network", 0))
        lines.append(
            f"  {phase}: {wall:.1f} s, cores busy {cpu['busy_cores']:.2f} of {os.cpu_count()} "
            f"(iowait {cpu['iowait_cores']:.2f})\n"
            f"    by process (cores): {parts}\n"
            f"    worker threads (CPU s since start): "
            + ", ".join(f"{k} {v:.1f}" for k, v in sorted(threads.items()))
            + f"; writer + network = {per_message / max(worker['received'], 1):.0f} µs/message"
        )
    return lines


def checks(results: dict[str, Any]) -> list[str]:
    """Sanity checks: every run completed, and the phases stored the same rows."""
    problems = [
        f"{phase}: the worker committed {results[phase]['committed_uplinks']:,} of "
        f"{results[phase]['uplinks']:,} uplinks"
        for phase in WORKER_PHASES
        if not results[phase]["completed"]
        or results[phase]["committed_uplinks"] != results[phase]["uplinks"]
    ]
    worker_rows = results["throughput"]["tables"]
    for phase in ("backlog_drain", "raw_copy"):
        if results[phase]["tables"] != worker_rows:
            problems.append(f"{phase} stored {results[phase]['tables']}, not {worker_rows}")
    return problems


def print_table(results: dict[str, Any]) -> None:
    """The table, the command and the environment, on stdout."""
    table = rows(results)
    width = max(len(r[0]) for r in table)
    value_width = max(len(r[1]) for r in table)
    m, v = results["machine"], results["versions"]
    print()
    print(f"command: {results['command']}")
    print(
        f"machine: {m['nproc']} × {m['cpu_model']}, {m['memory_gib']} GiB; PostgreSQL "
        f"{v['postgresql']} (fsync={v['postgresql_fsync']}, synchronous_commit="
        f"{v['postgresql_synchronous_commit']}); {v['mosquitto']}; Python {v['python']}"
    )
    print()
    print(f"{'measure':<{width}}  {'value':>{value_width}}  target / baseline")
    print(f"{'-' * width}  {'-' * value_width}  {'-' * 40}")
    for measure, value, note in table:
        print(f"{measure:<{width}}  {value:>{value_width}}  {note}")
    tables = results["throughput"]["tables"]
    print(
        "\nrows stored by the worker, the backlog drain and raw COPY: "
        + ", ".join(f"{t} {n:,}" for t, n in tables.items())
    )
    for problem in checks(results):
        print(f"WARNING: {problem}")
    if results["background_load_cores"] > 0.2:
        print(
            f"\nWARNING: the machine was busy before the run ({results['background_load_cores']}"
            " cores in use by other processes): figures are lower bounds. See 'others' below."
        )
    print()
    print("CPU during the worker runs:")
    for line in cpu_lines(results):
        print(line)


def write_json(results: dict[str, Any], *, quick: bool, path: Path | None = None) -> Path:
    """Write the results to `path`, by default bench/results/ingest-<date>[-quick].json."""
    if path is None:
        suffix = "-quick" if quick else ""
        path = RESULTS_DIR / f"ingest-{datetime.now():%Y-%m-%d}{suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**results, "table": [list(r) for r in rows(results)], "problems": checks(results)}
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path
