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
THROUGHPUT_PHASES = ("throughput", "backlog_drain", "shared_throughput", "shared_drain")
WORKER_PHASES = (*THROUGHPUT_PHASES, "latency")
TARGET_THROUGHPUT = 5000.0
TARGET_P99_S = 1.0
PARKING_FRESHNESS_P99_S = 1.0


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


def _met(rate: float) -> str:
    return "met" if rate >= TARGET_THROUGHPUT else "NOT met"


def worker_reports(phase: dict[str, Any]) -> list[dict[str, Any]]:
    """The worker reports of a phase: one, or one per worker of a shared group."""
    return phase["workers"] if "workers" in phase else [phase["worker"]]


def _shares(phase: dict[str, Any]) -> str:
    """Each worker's messages (and share of them) and uplinks."""
    return "; ".join(
        f"w{n}: {r['received']:,} msg ({share:.1%}), {r['uplinks']:,} uplinks"
        for n, (r, share) in enumerate(zip(phase["workers"], phase["shares"], strict=True), 1)
    )


def rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(measure, value, target or baseline) lines of the table."""
    lines = ingest_rows(results) if "throughput" in results else []
    lines += alerts_rows(results["alerts"]) if "alerts" in results else []
    return lines + (dashboard_rows(results["dashboard"]) if "dashboard" in results else [])


def ingest_rows(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Phases 1 to 6's lines of the table."""
    tp, lat = results["throughput"], results["latency"]
    naive, ceiling = results["per_message_insert"], results["raw_copy"]
    worker_rate = tp["uplinks_per_s"]
    e2e = lat["publish_to_commit_s"]
    drain = results["backlog_drain"]
    pair, pair_drain = results["shared_throughput"], results["shared_drain"]
    reports = [r for p in WORKER_PHASES for r in worker_reports(results[p])]
    rss_mib = max(r["peak_rss_kib"] for r in reports) / 1024
    p99_verdict = "met" if e2e["p99"] < TARGET_P99_S else "NOT met"
    mean_batch = tp["worker"]["received"] / max(tp["worker"]["batches"], 1)
    meeting = [f"{n} worker{'s' * (n > 1)}" for n, rate in ((1, worker_rate),
               (2, pair["uplinks_per_s"])) if rate >= TARGET_THROUGHPUT]  # fmt: skip
    return [
        (f"target: ≥ {TARGET_THROUGHPUT:,.0f} uplinks/s publish → committed, 2 cores",
         f"met by {' and '.join(meeting)}" if meeting else "NOT met",
         f"publisher on the box: 1 worker {worker_rate:,.0f}/s {_met(worker_rate)}, 2 workers "
         f"{pair['uplinks_per_s']:,.0f}/s {_met(pair['uplinks_per_s'])}; workers alone (1b/1d): "
         f"{drain['uplinks_per_s']:,.0f}/s, {pair_drain['uplinks_per_s']:,.0f}/s"),
        ("1. throughput, publish → committed, 1 worker", _rate(worker_rate),
         f"target ≥ {TARGET_THROUGHPUT:,.0f}: {_met(worker_rate)}"),
        ("   messages (uplinks + joins + statuses) → committed",
         f"{tp['messages_per_s']:,.0f} msg/s",
         f"{tp['uplinks']:,} uplinks, {tp['messages']:,} messages in {tp['elapsed_s']:.1f} s"),
        ("   publisher alone, first publish → last PUBACK", f"{tp['publish_rate']:,.0f} msg/s",
         f"QoS 1, unpaced, {results['options']['publisher']} publisher"),
        ("   worker batches", f"{mean_batch:,.0f} msg/batch",
         f"{tp['worker']['batches']} commits (batch_size {results['options']['batch_size']})"),
        ("1b. backlog drain: worker alone, queued → committed", _rate(drain["uplinks_per_s"]),
         f"{drain['elapsed_s']:.1f} s from CONNACK, no publisher running"),
        ("    publisher alone, nobody consuming", f"{drain['publish_alone_rate']:,.0f} msg/s",
         "first publish → last PUBACK"),
        ("1c. throughput, publish → committed, 2 workers (shared sub.)",
         _rate(pair["uplinks_per_s"]), f"target ≥ {TARGET_THROUGHPUT:,.0f}: "
         f"{_met(pair['uplinks_per_s'])}; {pair['elapsed_s']:.1f} s to the last commit"),
        ("    messages → committed, and each worker's share",
         f"{pair['messages_per_s']:,.0f} msg/s", _shares(pair)),
        ("    publisher, first publish → last PUBACK", f"{pair['publish_rate']:,.0f} msg/s",
         "same publisher as in 1"),
        ("1d. backlog drain: 2 workers alone, queued → committed",
         _rate(pair_drain["uplinks_per_s"]), f"{pair_drain['elapsed_s']:.1f} s from the first "
         f"CONNACK (second +{pair_drain['connect_skew_s']:.2f} s)"),
        ("    vs. 1 worker (1b), and each worker's share",
         f"×{pair_drain['uplinks_per_s'] / drain['uplinks_per_s']:.2f}", _shares(pair_drain)),
        (f"2. latency at {lat['rate']:,.0f}/s, ChirpStack time → committed: p50",
         _ms(e2e["p50"]), f"{e2e['count']:,} uplinks over {lat['duration_s']:.0f} s"),
        ("   p99", _ms(e2e["p99"]), f"target < {TARGET_P99_S * 1000:,.0f} ms: {p99_verdict}"),
        ("   max", _ms(e2e["max"]), ""),
        ("   in-worker part (received → committed): p50 / p99",
         f"{_ms(lat['receive_to_commit_s']['p50'])} / {_ms(lat['receive_to_commit_s']['p99'])}",
         f"batch_max_age_ms {results['options']['batch_max_age_ms']}"),
        ("3. peak RSS of the worker process", f"{rss_mib:,.0f} MiB",
         f"VmHWM, highest of the {len(reports)} worker processes"),
        ("4a. baseline: per-message INSERT + COMMIT", _rate(naive["uplinks_per_s"]),
         f"worker ×{worker_rate / naive['uplinks_per_s']:,.1f}; "
         f"{naive['commits_per_s']:,.0f} commits/s, {naive['elapsed_s']:.0f} s"),
        ("4b. baseline: raw COPY, no staging/conflicts", _rate(ceiling["uplinks_per_s"]),
         f"worker at {100 * worker_rate / ceiling['uplinks_per_s']:.0f} % of it"),
        ("    assemble() alone (parse + decode, 1 core)",
         f"{results['assemble']['messages_per_s']:,.0f} msg/s", "no I/O, no MQTT"),
        *onboarding_rows(results["onboarding"]),
        *parking_rows(results["parking"]),
    ]  # fmt: skip


def _per_s(value: float, unit: str) -> str:
    return f"{value:,.{1 if value < 100 else 0}f} {unit}/s"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def onboarding_rows(ob: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Phase 5's lines of the table: import, re-import, provisioning, baseline."""
    imp, again, cli = ob["import"], ob["reimport"], ob["import_cli"]
    prov, slow, naive = ob["provision"], ob["provision_default"], ob["naive_insert"]
    invalid = imp["counts"].get("error", 0)
    return [
        (f"5. bulk onboarding: CSV import of {imp['lines']:,} lines (API: 1 transaction)",
         _per_s(imp["devices_per_s"], "devices"),
         f"{imp['counts'].get('created', 0):,} created, {invalid:,} invalid lines reported, "
         f"in {imp['elapsed_s']:.1f} s ({imp['lines_per_s']:,.0f} lines/s)"),
        ("   re-import of the same file (idempotent: all unchanged)",
         _per_s(again["lines_per_s"], "lines"),
         f"{again['counts'].get('unchanged', 0):,} unchanged, "
         f"{again['counts'].get('error', 0):,} errors, in {again['elapsed_s']:.1f} s"),
        ("   import as the CLI runs it (autocommit: a commit per line)",
         _per_s(cli["devices_per_s"], "devices"),
         f"{cli['lines']:,} lines of another file in {cli['elapsed_s']:.1f} s; "
         f"the API's way ×{imp['devices_per_s'] / cli['devices_per_s']:.2f}"),
        (f"   provisioning, throttle at {prov['requests_per_second_setting']:,.0f} req/s "
         "(not the limit)",
         _per_s(prov["devices_per_s"], "devices"),
         f"{prov['provisioned']:,} devices, {prov['grpc_calls']:,} gRPC calls "
         f"({prov['calls_per_s']:,.0f}/s) in {prov['elapsed_s']:.1f} s, loopback server"),
        (f"   provisioning at the default throttle ({slow['requests_per_second_setting']:g} "
         "req/s)", _per_s(slow["implied_devices_per_s"], "devices"),
         f"implied (2 calls/device); measured {slow['devices_per_s']:.1f}/s on "
         f"{slow['provisioned']} devices; the {imp['valid']:,} would take "
         f"{_duration(slow['implied_s_for_file'])}"),
        ("5b. baseline: naive import, INSERT + COMMIT per device",
         _per_s(naive["devices_per_s"], "devices"),
         f"no validation, no lookup, no report; API import at "
         f"×{imp['devices_per_s'] / naive['devices_per_s']:.2f}, CLI at "
         f"×{cli['devices_per_s'] / naive['devices_per_s']:.2f} of it"),
    ]  # fmt: skip


def _threads(worker: dict[str, Any]) -> str:
    threads = {k: v for k, v in worker["thread_cpu"].items() if v >= 0.05}
    per_message = 1e6 * (threads.get("ingest-writer", 0) + threads.get("mqtt-network", 0))
    return (
        ", ".join(f"{k} {v:.1f}" for k, v in sorted(threads.items()))
        + f"; writer + network = {per_message / max(worker['received'], 1):.0f} µs/message"
    )


def _waits(waits: dict[str, Any]) -> str:
    """Shares of the workers' backends' samples by state / wait event, lock waits, deadlocks."""
    samples: dict[str, int] = waits["samples"]
    total = max(sum(samples.values()), 1)
    locks = sum(n for event, n in samples.items() if event.startswith("Lock:"))
    top = ", ".join(f"{event} {n / total:.0%}" for event, n in list(samples.items())[:6])
    return f"{top}; Lock:* {locks / total:.1%}, deadlocks {waits['deadlocks']}"


def cpu_lines(results: dict[str, Any]) -> list[str]:
    """Where the CPU went during the worker runs, and what PostgreSQL sessions waited on."""
    lines = []
    for phase in WORKER_PHASES:
        cpu, reports = results[phase]["cpu_s"], worker_reports(results[phase])
        wall = cpu["wall"]
        names = [k for k in cpu if k not in ("wall", "busy_cores", "iowait_cores")]
        parts = ", ".join(f"{name} {cpu[name] / wall:.2f}" for name in names)
        lines.append(
            f"  {phase}: {wall:.1f} s, cores busy {cpu['busy_cores']:.2f} of {os.cpu_count()} "
            f"(iowait {cpu['iowait_cores']:.2f})\n    by process (cores): {parts}"
        )
        for n, worker in enumerate(reports, 1):
            label = "worker" if len(reports) == 1 else f"worker-{n}"
            lines.append(f"    {label} threads (CPU s since start): {_threads(worker)}")
        if "pg_waits" in results[phase]:
            lines.append(
                "    worker DB sessions (20 Hz samples): " + _waits(results[phase]["pg_waits"])
            )
    return lines


def _pair_ms(figures: dict[str, float]) -> str:
    return f"{_ms(figures['p50'])} / {_ms(figures['p99'])}"


def parking_rows(pk: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Phase 6's lines: feed latency, plate checks, freshness (p50 / p99 where timed)."""
    feed, polling, fresh = pk["feed"], pk["polling"], pk["freshness"]
    one, many, lookups = pk["plates_1"], pk["plates_n"], pk["lookups"]
    worst = max(fresh["sensor_s"]["p99"], fresh["webhook_s"]["p99"])
    verdict = "met" if worst < PARKING_FRESHNESS_P99_S else "NOT met"
    return [
        (f"6. control map, {pk['bays']:,} bays: feed after a change, p50 / p99",
         _pair_ms(feed["after_change_s"]), f"snapshot recomputed: the baseline, what every "
         f"poll would cost unshared; {feed['body_bytes'] / 1e6:.1f} MB GeoJSON"),
        ("   feed, shared snapshot reused: p50 / p99", _pair_ms(feed["shared_snapshot_s"]),
         f"×{feed['after_change_s']['p50'] / feed['shared_snapshot_s']['p50']:.1f} faster "
         "than recomputing (p50)"),
        ("   feed polled with its ETag (304): p50 / p99", _pair_ms(feed["not_modified_s"]),
         "no body"),
        (f"   {polling['agents']} agents polling at once (ETag)",
         _per_s(polling["polls_per_s"], "polls"),
         f"p50 / p99 {_pair_ms(polling['latency_s'])}; one uvicorn process"),
        ("   plate checks over HTTP, 1 client (audited)", _per_s(one["checks_per_s"], "checks"),
         f"p50 / p99 {_pair_ms(one['latency_s'])}"),
        (f"   plate checks, {many['clients']} clients", _per_s(many["checks_per_s"], "checks"),
         f"p50 / p99 {_pair_ms(many['latency_s'])}"),
        ("   plate look-up query by normalised key (index)",
         _per_s(lookups["by_key"]["lookups_per_s"], "look-ups"),
         f"baseline, normalising in the query: {lookups['naive']['lookups_per_s']:,.0f}/s "
         f"over {lookups['sessions']:,} sessions"),
        ("   freshness, sensor uplink → SSE: p50 / p99", _pair_ms(fresh["sensor_s"]),
         f"{fresh['sensor_s']['count']} events; includes ingest batching (200 ms max age)"),
        ("   freshness, webhook → SSE: p50 / p99", _pair_ms(fresh["webhook_s"]),
         f"target p99 < {PARKING_FRESHNESS_P99_S:.0f} s: {verdict} (contract replaced: 5 s)"),
    ]  # fmt: skip


def alerts_rows(al: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Phase 7's lines: leak → incident → e-mail latency, rule evaluations/s, ingest."""
    lat, tp = al["latency"], al["throughput"]
    incident, mail = lat["commit_to_incident_s"], lat["commit_to_mail_s"]
    many, default = tp["many"], tp["default"]
    alone, engine = tp["ingest_alone"], tp["ingest_engine"]
    rules = sum(tp["matches"]["rules"].values())
    per_reading = many["tally"]["observations"] / max(many["readings"], 1)
    return [
        ("7. alerts: leak uplink committed → P0 incident row: p50 / p99",
         _pair_ms(incident), f"max {_ms(incident['max'])}; {incident['count']} leaks, one at a "
         "time; LISTEN civicsense_notify"),
        ("   leak uplink committed → e-mail at the SMTP server: p50 / p99", _pair_ms(mail),
         f"max {_ms(mail['max'])}; {mail['count']} e-mails (DeliveryWorker woken by NOTIFY, "
         "aiosmtpd)"),
        (f"   rule evaluations, {rules:,} rules, committed batches",
         _per_s(many["evaluations_per_s"], "evaluations"),
         f"{many['tally']['observations']:,} ({per_reading:.0f} per reading) over "
         f"{many['readings']:,} readings in {many['elapsed_s']:.1f} s "
         f"({many['readings_per_s']:,.0f} readings/s); opened {many['tally']['opened']:,}, "
         f"incidents {many['tally']['incidents']:,}"),
        ("   baseline: the 6 default rules", _per_s(default["evaluations_per_s"], "evaluations"),
         f"{default['tally']['observations']:,} in {default['elapsed_s']:.2f} s "
         f"({default['readings_per_s']:,.0f} readings/s)"),
        ("   ingest, no subscriber", _rate(alone["uplinks_per_s"]),
         f"{alone['readings_per_s']:,.0f} readings/s, in-process pipeline"),
        (f"   ingest with the alert engine subscribed ({rules:,} rules)",
         _rate(engine["uplinks_per_s"]),
         f"×{engine['uplinks_per_s'] / alone['uplinks_per_s']:.2f} of it; "
         f"{engine['alerts']:,} alerts"),
        ("   ... and every uplink evaluated by the engine (its own thread)",
         _rate(engine["evaluated_uplinks_per_s"]),
         f"the engine finished {engine['engine_lag_s']:.1f} s after ingest"),
    ]  # fmt: skip


def dashboard_rows(db: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Phase 8's lines: the dashboards' data on a year of readings, rollups against raw."""
    series, raw = db["series_31d_rollup_s"], db["series_31d_raw_s"]
    year, year_raw = db["year_rollup_s"], db["year_raw_s"]
    return [
        (f"8. dashboards, {db['rooms']} rooms × a year: air series, 31 days: p50 / p99",
         _pair_ms(series), f"baseline from raw readings: {_pair_ms(raw)}"),
        ("   one room's year of hourly means: p50 / p99", _pair_ms(year),
         f"baseline from raw readings: {_pair_ms(year_raw)}"),
        ("   a building's room × hour heatmap, 31 days: p50 / p99",
         _pair_ms(db["heatmap_31d_s"]), "20 rooms, from the rollups"),
        ("   overview page data: p50 / p99", _pair_ms(db["overview_s"]),
         "device counts, incidents, stuffy rooms, leaks"),
        ("   a year rolled up once (backfill)", _ms(db["rollup_year_s"]),
         f"{db['readings']:,} readings; COPY took {_ms(db['copy_s'])}"),
    ]  # fmt: skip


def alerts_checks(al: dict[str, Any]) -> list[str]:
    """Phase 7: every leak made its incident and its e-mail."""
    lat = al["latency"]
    problems = [f"alerts latency: {n} leaks without their {what}"
                for what, n in lat["missed"].items() if n]  # fmt: skip
    if lat["p0_leak_incidents"] != lat["leaks"] or lat["mails"] != lat["leaks"]:
        problems.append(f"alerts latency: {lat['leaks']} leaks made {lat['p0_leak_incidents']}"
                        f" P0 leak incidents and {lat['mails']} e-mails")  # fmt: skip
    tp = al["throughput"]
    counted = sum(tp["matches"]["observations_by_kind"].values())
    observed = tp["many"]["tally"]["observations"]
    if observed != counted:
        problems.append(f"alerts throughput: the engine observed {observed:,}, the rules'"
                        f" scopes say {counted:,}")  # fmt: skip
    return problems


def checks(results: dict[str, Any]) -> list[str]:
    """Sanity checks: every run completed, and the phases stored the same rows."""
    problems = alerts_checks(results["alerts"]) if "alerts" in results else []
    if "throughput" in results:
        problems += ingest_checks(results)
    return problems


def ingest_checks(results: dict[str, Any]) -> list[str]:
    """Phases 1 to 6: every run completed, and the phases stored the same rows."""
    problems = [
        f"{phase}: the worker committed {results[phase]['committed_uplinks']:,} of "
        f"{results[phase]['uplinks']:,} uplinks"
        for phase in WORKER_PHASES
        if not results[phase]["completed"]
        or results[phase]["committed_uplinks"] != results[phase]["uplinks"]
    ]
    for phase in THROUGHPUT_PHASES:  # no redelivery, no ON CONFLICT skip (loss: row counts)
        reports = worker_reports(results[phase])
        received = sum(r["received"] for r in reports)
        duplicates = sum(r["duplicates"] for r in reports)
        if received > results[phase]["messages"] or duplicates:
            problems.append(
                f"{phase}: the workers received {received:,} of {results[phase]['messages']:,}"
                f" messages, {duplicates:,} duplicates"
            )
    problems += [f"onboarding: {p}" for p in results["onboarding"]["problems"]]
    problems += [
        f"parking freshness: {n} {kind} changes never reached the live feed"
        for kind, n in results["parking"]["freshness"]["missed"].items()
        if n
    ]
    worker_rows = results["throughput"]["tables"]
    for phase in (*THROUGHPUT_PHASES[1:], "raw_copy"):
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
    if "throughput" in results:
        tables = results["throughput"]["tables"]
        print(
            "\nrows stored by each of phases 1, 1b, 1c, 1d and raw COPY: "
            + ", ".join(f"{t} {n:,}" for t, n in tables.items())
        )
    for problem in checks(results):
        print(f"WARNING: {problem}")
    if results["background_load_cores"] > 0.2:
        print(
            f"\nWARNING: the machine was busy before the run ({results['background_load_cores']}"
            " cores in use by other processes): figures are lower bounds. See 'others' below."
        )
    if "throughput" in results:
        print_cpu(results)


def print_cpu(results: dict[str, Any]) -> None:
    """Where the CPU went in phases 1 to 5, on stdout."""
    print()
    print("CPU during the worker runs (and the workers' PostgreSQL sessions):")
    for line in cpu_lines(results):
        print(line)
    ob = results["onboarding"]
    print(
        f"CPU during bulk onboarding (phase 5: {ob['phase_s']:.0f} s in all; cores; the gRPC "
        "server runs in the bench process):"
    )
    for label, part in (("import", ob["import"]), ("provisioning", ob["provision"])):
        cpu = part["cpu_s"]
        names = [k for k in cpu if k not in ("wall", "busy_cores", "iowait_cores")]
        parts = ", ".join(f"{name} {cpu[name] / cpu['wall']:.2f}" for name in names)
        print(f"  {label}: {cpu['wall']:.1f} s, cores busy {cpu['busy_cores']:.2f} "
              f"(iowait {cpu['iowait_cores']:.2f}); {parts}")  # fmt: skip


def write_json(
    results: dict[str, Any], *, quick: bool, path: Path | None = None, name: str | None = None
) -> Path:
    """Write the results to `path`, by default bench/results/<name>-<date>[-quick].json
    (`name`: the phase run alone, else `ingest`)."""
    if path is None:
        suffix = "-quick" if quick else ""
        path = RESULTS_DIR / f"{name or 'ingest'}-{datetime.now():%Y-%m-%d}{suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {**results, "table": [list(r) for r in rows(results)], "problems": checks(results)}
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    return path
