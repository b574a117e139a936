"""`make soak`: a town ten times a large one, for ten minutes, through the deployed shape.

20,000 simulated sensors (the demo mix: parking, air, leaks) each report about once a
minute (ten times the usual ten-minute interval) to mosquitto, for 10 minutes; two
`civicsense ingest` processes, the real command, share one MQTT 5 subscription as docker/
runs them, with the alert engine and parking's occupancy subscribed. Then:

- nothing lost, nothing duplicated: every published uplink's deduplicationId is stored
  once, every join/status event once;
- memory flat: each worker's RSS, sampled every 5 s, grows less than `--rss-growth` (MB)
  between the second minute and the last;
- ingest lag under 1 s: for every uplink, its commit time (PostgreSQL's own commit
  timestamps, `track_commit_timestamp`) minus the event's time stamped by the simulator;
  per minute and overall.

It also records what the sizing note needs: rows and bytes on disk per uplink.
Exit status 1 if a check fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import psycopg

from core.settings import Settings
from ingest.simulator import FleetSimulator, SimEvent, demo_fleet, publish

from . import fleet, services
from .stats import summarise

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("uplinks", "readings", "device_events", "ingest_rejects")
_WINDOW = timedelta(seconds=10)


@dataclass
class Published:
    """What the simulator sent, as the soak's checks need it."""

    uplink_ids: set[str] = field(default_factory=set)
    other_events: Counter[str] = field(default_factory=Counter)

    def observe(self, event: SimEvent) -> None:
        if event.event == "up":
            self.uplink_ids.add(str(event.deduplication_id))
        elif not event.duplicate:
            self.other_events[event.event] += 1


class Worker:
    """`civicsense ingest` as a real process, one member of the shared group."""

    def __init__(self, settings: Settings, index: int, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICSENSE_")}
        env |= {
            "CIVICSENSE_DATABASE_URL": settings.database_url,
            "CIVICSENSE_MQTT_URL": settings.mqtt_url,
            "PYTHONPATH": str(ROOT),
        }
        self.log = log
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "core", "ingest", "--shared-group", "soak",
                 "--client-id", f"soak-{index}"],
                env=env, stdout=out, stderr=out, cwd=ROOT,
            )  # fmt: skip
        self.ps = psutil.Process(self.process.pid)
        self.rss: list[tuple[float, int]] = []  # (seconds since start, bytes)

    def wait_subscribed(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while "subscribed to" not in self.log.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ingest worker did not subscribe; see {self.log}")
            time.sleep(0.2)

    def sample(self, at: float) -> None:
        with contextlib.suppress(psutil.Error):
            self.rss.append((at, self.ps.memory_info().rss))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(120)


def _sampler(workers: list[Worker], started: float, stop: threading.Event) -> None:
    while not stop.wait(5.0):
        for worker in workers:
            worker.sample(time.monotonic() - started)


def _track_commit_times(svc: services.Services) -> None:
    """Turn on commit timestamps (a restart), so each uplink's commit time can be read, and
    the logging of checkpoints and autovacuum, to explain the slowest commits."""
    with psycopg.connect(svc.database_url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET track_commit_timestamp = on")
        conn.execute("ALTER SYSTEM SET log_checkpoints = on")
        conn.execute("ALTER SYSTEM SET log_autovacuum_min_duration = 0")
    svc.postgres.stop()
    svc.postgres.start()


def _slowest_commits(conn: psycopg.Connection, log: Path) -> list[dict[str, Any]]:
    """The three slowest commits, each with what the server logged in the 10 s before it
    (checkpoints, autovacuum, autoanalyze)."""
    rows = conn.execute(
        "SELECT pg_xact_commit_timestamp(xmin) AS at, max(extract(epoch FROM"
        " pg_xact_commit_timestamp(xmin) - time))::float8 AS lag FROM uplinks"
        " GROUP BY 1 ORDER BY 2 DESC LIMIT 3"
    ).fetchall()
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    stamped = []
    for line in lines:
        if any(word in line for word in ("checkpoint", "automatic vacuum", "automatic analyze")):
            with contextlib.suppress(ValueError):
                stamped.append((datetime.fromisoformat(line[:23] + "+00:00"), line[24:150]))
    return [
        {
            "committed": at.isoformat(),
            "lag_s": lag,
            "server_log": [t for when, t in stamped if timedelta(0) <= at - when <= _WINDOW],
        }
        for at, lag in rows
    ]


def _stored(conn: psycopg.Connection) -> dict[str, Any]:
    one = lambda q: conn.execute(q).fetchone()[0]  # type: ignore[index]  # noqa: E731
    return {
        "uplinks": one("SELECT count(*) FROM uplinks"),
        "distinct_uplinks": one("SELECT count(DISTINCT dedup_id) FROM uplinks"),
        "device_events": one("SELECT count(*) FROM device_events"),
        "readings": one("SELECT count(*) FROM readings"),
        "rejects": one("SELECT count(*) FROM ingest_rejects"),
    }


def _missing(conn: psycopg.Connection, published: Published) -> int:
    """Published uplinks not stored (compared in the database, not in Python memory)."""
    with conn.transaction():
        conn.execute("CREATE TEMP TABLE sent (dedup_id uuid) ON COMMIT DROP")
        with conn.cursor().copy("COPY sent FROM STDIN") as copy:
            for dedup_id in published.uplink_ids:
                copy.write_row((dedup_id,))
        row = conn.execute(
            "SELECT count(*) FROM sent s WHERE NOT EXISTS"
            " (SELECT 1 FROM uplinks u WHERE u.dedup_id = s.dedup_id)"
        ).fetchone()
    return int(row[0])  # type: ignore[index]


def _lags(conn: psycopg.Connection) -> tuple[list[float], list[float]]:
    """Every uplink's commit − event time (s), and the worst per minute of the run."""
    rows = conn.execute(
        "SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - time)::float8,"
        " date_trunc('minute', time) FROM uplinks ORDER BY time"
    ).fetchall()
    per_minute: dict[Any, float] = {}
    for lag, minute in rows:
        per_minute[minute] = max(per_minute.get(minute, 0.0), lag)
    return [r[0] for r in rows], list(per_minute.values())


def _bytes(conn: psycopg.Connection) -> dict[str, int]:
    return {
        table: int(
            conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)"
                " FROM pg_partition_tree(%s::regclass)",
                (table,),
            ).fetchone()[0]  # type: ignore[index]
        )
        for table in TABLES
    }


def _memory(worker: Worker, warm_up: float) -> dict[str, Any]:
    """RSS (MB) at the end of warm-up (the 2nd minute's mean) and the last minute's mean."""
    samples = [(t, rss / 2**20) for t, rss in worker.rss]
    end = samples[-1][0]
    early = [m for t, m in samples if warm_up <= t < warm_up + 60] or [samples[0][1]]
    late = [m for t, m in samples if t >= end - 60]
    per_minute: dict[int, list[float]] = {}
    for t, m in samples:
        per_minute.setdefault(int(t // 60), []).append(m)
    return {
        "per_minute_mb": [round(sum(ms) / len(ms), 1) for _, ms in sorted(per_minute.items())],
        "early_mb": sum(early) / len(early),
        "late_mb": sum(late) / len(late),
        "peak_mb": max(m for _, m in samples),
        "growth_mb": sum(late) / len(late) - sum(early) / len(early),
    }


def run(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    rate = args.sensors / args.interval
    with services.running(data_dir) as svc:
        _track_commit_times(svc)
        town = demo_fleet(args.sensors, seed=args.seed)
        with psycopg.connect(svc.database_url) as conn:
            fleet.register(conn, svc.settings, town)
        workers = [Worker(svc.settings, i, data_dir / f"ingest-{i}.log") for i in range(2)]
        stop = threading.Event()
        try:
            for worker in workers:
                worker.wait_subscribed()
            started = time.monotonic()
            sampler = threading.Thread(target=_sampler, args=(workers, started, stop))
            sampler.start()
            published = Published()
            simulator = FleetSimulator(town, protobuf=None, seed=args.seed, malformed_ratio=0)
            print(f"soak: {args.sensors} sensors, {rate:.0f} uplinks/s for {args.duration:.0f}s")
            sent = publish(
                svc.settings.mqtt_url, simulator, rate=rate, duration=args.duration,
                observe=published.observe,
            )  # fmt: skip
            with psycopg.connect(svc.database_url, autocommit=True) as conn:
                deadline = time.monotonic() + 120
                while (
                    _stored(conn)["distinct_uplinks"] < len(published.uplink_ids)
                    and time.monotonic() < deadline
                ):
                    time.sleep(0.5)
            stop.set()
            sampler.join()
        finally:
            stop.set()
            for worker in workers:
                worker.stop()
        with psycopg.connect(svc.database_url, autocommit=True) as conn:
            stored = _stored(conn)
            missing = _missing(conn, published)
            lags, worst_per_minute = _lags(conn)
            disk = _bytes(conn)
            slowest = _slowest_commits(conn, svc.postgres.data_dir / "server.log")
        return {
            "sensors": args.sensors,
            "interval_s": args.interval,
            "duration_s": args.duration,
            "rate_per_s": rate,
            "published": sent.published,
            "published_uplinks": len(published.uplink_ids),
            "published_other_events": sum(published.other_events.values()),
            "second_gateway_copies": sent.duplicates,
            "unacked": sent.unacked,
            "stored": stored,
            "missing_uplinks": missing,
            "lag_s": summarise(lags),
            "lag_over_limit": sum(lag >= args.max_lag for lag in lags),
            "lag_worst_per_minute_s": worst_per_minute,
            "memory": [_memory(w, 60.0) for w in workers],
            "disk_bytes": disk,
            "slowest_commits": slowest,
        }


def checks(result: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """The soak's failed checks, in words (empty: passed)."""
    stored, failed = result["stored"], []
    if result["missing_uplinks"] or stored["distinct_uplinks"] != result["published_uplinks"]:
        failed.append(f"uplinks lost: {result['missing_uplinks']} published ones not stored")
    if stored["uplinks"] != stored["distinct_uplinks"]:
        failed.append(f"uplinks duplicated: {stored['uplinks'] - stored['distinct_uplinks']}")
    if stored["device_events"] != result["published_other_events"]:
        failed.append(
            f"device events: {stored['device_events']} stored,"
            f" {result['published_other_events']} published"
        )
    if result["lag_s"]["max"] >= args.max_lag:
        failed.append(f"ingest lag reached {result['lag_s']['max']:.2f}s (limit {args.max_lag}s)")
    for i, memory in enumerate(result["memory"]):
        if memory["growth_mb"] >= args.rss_growth:
            failed.append(f"worker {i} RSS grew {memory['growth_mb']:.1f} MB")
    return failed


def print_report(result: dict[str, Any]) -> None:
    stored, lag, disk = result["stored"], result["lag_s"], result["disk_bytes"]
    uplinks = max(stored["uplinks"], 1)
    print(f"published {result['published']} events ({result['published_uplinks']} uplinks,"
          f" {result['second_gateway_copies']} second-gateway copies),"
          f" unacked {result['unacked']}")  # fmt: skip
    print(f"stored    {stored['uplinks']} uplinks ({stored['distinct_uplinks']} distinct),"
          f" {stored['readings']} readings, {stored['device_events']} device events,"
          f" {stored['rejects']} rejects; missing {result['missing_uplinks']}")  # fmt: skip
    print(f"lag (commit − event time): p50 {lag['p50'] * 1000:.0f} ms, p99 {lag['p99'] * 1000:.0f}"
          f" ms, max {lag['max'] * 1000:.0f} ms; {result['lag_over_limit']} uplinks at or over"
          f" the limit; worst per minute {_ms_list(result['lag_worst_per_minute_s'])}")  # fmt: skip
    for i, m in enumerate(result["memory"]):
        print(f"worker {i} RSS: {m['early_mb']:.1f} MB after warm-up → {m['late_mb']:.1f} MB"
              f" at the end (peak {m['peak_mb']:.1f} MB,"
              f" growth {m['growth_mb']:+.1f} MB); per minute {m['per_minute_mb']}")  # fmt: skip
    for slow in result["slowest_commits"]:
        print(f"slow commit at {slow['committed']}: lag {slow['lag_s'] * 1000:.0f} ms;"
              f" server log in the 10 s before: {slow['server_log'] or 'nothing'}")  # fmt: skip
    per_uplink = {t: b / uplinks for t, b in disk.items()}
    print("disk per uplink: " + ", ".join(f"{t} {b:.0f} B" for t, b in per_uplink.items())
          + f"; readings per uplink {stored['readings'] / uplinks:.2f}")  # fmt: skip


def _ms_list(seconds: list[float]) -> str:
    return "[" + ", ".join(f"{s * 1000:.0f}" for s in seconds) + "] ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--sensors", type=int, default=20_000)
    parser.add_argument("--interval", type=float, default=60.0, help="mean s between uplinks")
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of publishing")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--max-lag", type=float, default=1.0, help="seconds")
    parser.add_argument("--rss-growth", type=float, default=20.0, help="MB allowed per worker")
    parser.add_argument("--json", type=Path, help="write the figures there")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="civicsense-soak-") as tmp:
        result = run(args, Path(tmp))
    print_report(result)
    failed = checks(result, args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**result, "failed": failed}, indent=2, default=str))
    for failure in failed:
        print(f"FAILED: {failure}")
    print("soak passed" if not failed else "soak FAILED")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
