"""The measured phases: worker throughput, worker latency, and the two database baselines.

Each phase starts from empty ingest tables (TRUNCATE + CHECKPOINT) on the same server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import psycopg

from ingest import store
from ingest.simulator import FleetSimulator, SimEvent, publish

from .cpu import CpuMeter
from .fleet import Rows, Unit
from .publisher import publish_unpaced
from .services import Services
from .workerproc import WorkerProcess


def _groups(services: Services, worker: WorkerProcess) -> dict[str, list[psutil.Process]]:
    return {"worker": [worker.ps], "publisher": [psutil.Process()], **services.processes()}


def throughput(services: Services, events: Sequence[SimEvent], log_dir: Path) -> dict[str, Any]:
    """Unpaced QoS 1 publication of `events`; first publish → last uplink committed."""
    services.reset()
    expected = sum(event.event == "up" for event in events)
    worker = WorkerProcess(
        services.settings, client_id=f"bench-throughput-{os.getpid()}",
        log_path=log_dir / "worker-throughput.log", expect=expected,
    )  # fmt: skip
    try:
        worker.wait_ready()
        meter = CpuMeter()
        meter.start(_groups(services, worker))
        published = publish_unpaced(services.settings.mqtt_url, events)
        report = worker.wait_done()
        cpu = meter.stop(_groups(services, worker))
        worker.close()
    finally:
        worker.kill()
    elapsed = report["last_commit"] - published.started
    return {
        "messages": len(events),
        "uplinks": expected,
        "committed_uplinks": report["uplinks"],
        "completed": report["completed"],
        "elapsed_s": elapsed,
        "uplinks_per_s": report["uplinks"] / elapsed,
        "messages_per_s": report["received"] / elapsed,
        "publish_rate": published.rate,
        "publish_unacked": published.unacked,
        "cpu_s": cpu,
        "worker": report,
        "tables": services.counts(),
    }


def backlog_drain(services: Services, events: Sequence[SimEvent], log_dir: Path) -> dict[str, Any]:
    """The worker alone: `events` queued in its broker session first, then drained.

    A first worker start creates the persistent session and its subscription and stops;
    the events are published while no worker runs (the broker queues them); a second
    worker with the same client id then drains them. Measured from its connection to the
    last uplink committed: the worker's capacity without a publisher competing for CPU.
    """
    services.reset()
    client_id = f"bench-drain-{os.getpid()}"
    expected = sum(event.event == "up" for event in events)
    first = WorkerProcess(
        services.settings, client_id=client_id, log_path=log_dir / "worker-drain.log"
    )
    try:
        first.wait_ready()
        first.stop()
        first.wait_done()
        first.close()
    finally:
        first.kill()
    published = publish_unpaced(services.settings.mqtt_url, events)
    worker = WorkerProcess(
        services.settings, client_id=client_id, log_path=log_dir / "worker-drain.log",
        expect=expected, resume=True,
    )  # fmt: skip
    try:
        worker.wait_ready()
        meter = CpuMeter()
        meter.start(_groups(services, worker))
        report = worker.wait_done()
        cpu = meter.stop(_groups(services, worker))
        worker.close()
    finally:
        worker.kill()
    elapsed = report["last_commit"] - report["connected_at"]
    return {
        "messages": len(events),
        "uplinks": expected,
        "committed_uplinks": report["uplinks"],
        "completed": report["completed"],
        "elapsed_s": elapsed,
        "uplinks_per_s": report["uplinks"] / elapsed,
        "messages_per_s": report["received"] / elapsed,
        "publish_alone_rate": published.rate,
        "publish_unacked": published.unacked,
        "cpu_s": cpu,
        "worker": report,
        "tables": services.counts(),
    }


def latency(
    services: Services, simulator: FleetSimulator, *, rate: float, duration: float, log_dir: Path
) -> dict[str, Any]:
    """Events published at `rate`/s for `duration` s, stamped with the wall clock when sent."""
    services.reset()
    worker = WorkerProcess(
        services.settings, client_id=f"bench-latency-{os.getpid()}",
        log_path=log_dir / "worker-latency.log", latency=True,
    )  # fmt: skip
    try:
        worker.wait_ready()
        meter = CpuMeter()
        meter.start(_groups(services, worker))
        sent = publish(services.settings.mqtt_url, simulator, rate=rate, duration=duration)
        worker.expect(sent.by_event["up"])
        report = worker.wait_done()
        cpu = meter.stop(_groups(services, worker))
        worker.close()
    finally:
        worker.kill()
    return {
        "rate": rate,
        "duration_s": duration,
        "published": sent.published,
        "achieved_rate": sent.published / sent.elapsed,
        "uplinks": sent.by_event["up"],
        "committed_uplinks": report["uplinks"],
        "completed": report["completed"],
        "publish_to_commit_s": report["publish_to_commit"],
        "receive_to_commit_s": report["receive_to_commit"],
        "cpu_s": cpu,
        "worker": report,
    }


def _insert_sql(table: str, columns: str) -> str:
    placeholders = ", ".join(["%s"] * len(columns.split(",")))
    return f"INSERT INTO {table} ({columns}) VALUES ({placeholders})"


_INSERT = {
    "uplinks": _insert_sql("uplinks", store.UPLINK_COLUMNS),
    "device_events": _insert_sql("device_events", store.EVENT_COLUMNS),
}
_INSERT_READING = _insert_sql("readings", store.READING_COLUMNS)


def per_message_insert(services: Services, rows: Rows, *, budget_s: float) -> dict[str, Any]:
    """The naive writer: per message, INSERT its row and its readings, then COMMIT.

    Runs for at most `budget_s` seconds (a prefix of the same rows): its rate is set by
    one commit (one WAL fsync) per message, so a prefix measures it as well as the whole.
    """
    services.reset()
    done = uplinks = 0
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        started = time.perf_counter()
        deadline = started + budget_s
        for unit in rows.units:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(_INSERT[unit.table], unit.row)
                if unit.readings:
                    cur.executemany(_INSERT_READING, unit.readings)
            done += 1
            uplinks += unit.table == "uplinks"
            if time.perf_counter() > deadline:
                break
        elapsed = time.perf_counter() - started
    return {
        "messages": done,
        "of_messages": len(rows.units),
        "uplinks": uplinks,
        "elapsed_s": elapsed,
        "uplinks_per_s": uplinks / elapsed,
        "commits_per_s": done / elapsed,
        "tables": services.counts(),
    }


def _copy(cur: psycopg.Cursor, table: str, columns: str, rows: list[tuple]) -> None:
    if rows:
        with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def raw_copy(services: Services, rows: Rows, *, batch_size: int) -> dict[str, Any]:
    """The ceiling: COPY the rows straight into the tables, one transaction per batch.

    Batches hold `batch_size` messages, as the worker's do; no staging tables, no
    conflict handling, no parsing or decoding (the rows are built beforehand).
    """
    services.reset()
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        started = time.perf_counter()
        for first in range(0, len(rows.units), batch_size):
            chunk: list[Unit] = rows.units[first : first + batch_size]
            with conn.transaction(), conn.cursor() as cur:
                for table, columns in (
                    ("uplinks", store.UPLINK_COLUMNS),
                    ("device_events", store.EVENT_COLUMNS),
                ):
                    _copy(cur, table, columns, [u.row for u in chunk if u.table == table])
                readings = [r for u in chunk for r in u.readings]
                _copy(cur, "readings", store.READING_COLUMNS, readings)
        elapsed = time.perf_counter() - started
    return {
        "messages": len(rows.units),
        "uplinks": rows.uplinks,
        "readings": rows.readings,
        "elapsed_s": elapsed,
        "uplinks_per_s": rows.uplinks / elapsed,
        "tables": services.counts(),
    }
