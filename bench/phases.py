"""The measured phases: worker throughput (one worker, then two on a shared subscription),
worker latency, and the two database baselines.

Each phase starts from empty ingest tables (TRUNCATE + CHECKPOINT) on the same server,
and ends the broker sessions it created, so that they queue nothing of later phases.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psutil
import psycopg

from ingest import store
from ingest.simulator import FleetSimulator, SimEvent, publish

from .cpu import CpuMeter
from .fleet import Rows, Unit
from .pgwaits import PgWaits
from .publisher import Published, Publisher
from .services import Services
from .workerproc import WorkerProcess, wait_committed


def _groups(services: Services, *workers: WorkerProcess) -> dict[str, list[psutil.Process]]:
    names = ["worker"] if len(workers) == 1 else [f"worker-{n + 1}" for n in range(len(workers))]
    return {
        **{name: [worker.ps] for name, worker in zip(names, workers, strict=True)},
        "publisher": [psutil.Process()],
        **services.processes(),
    }


def throughput(
    services: Services, events: Sequence[SimEvent], log_dir: Path, publish_unpaced: Publisher
) -> dict[str, Any]:
    """Unpaced QoS 1 publication of `events`; first publish → last uplink committed."""
    services.reset()
    expected = sum(event.event == "up" for event in events)
    client_id = f"bench-throughput-{os.getpid()}"
    worker = WorkerProcess(
        services.settings, client_id=client_id, log_path=log_dir / "worker-throughput.log",
        expect=expected,
    )  # fmt: skip
    try:
        worker.wait_ready()
        meter = CpuMeter()
        meter.start(_groups(services, worker))
        sampler = PgWaits(services.database_url)
        published = publish_unpaced(services.settings.mqtt_url, events)
        report = worker.wait_done()
        cpu = meter.stop(_groups(services, worker))
        waits = sampler.stop()
        worker.close()
    finally:
        worker.kill()
    services.forget_sessions(client_id)
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
        "pg_waits": waits,
        "worker": report,
        "tables": services.counts(),
    }


def backlog_drain(
    services: Services, events: Sequence[SimEvent], log_dir: Path, publish_unpaced: Publisher
) -> dict[str, Any]:
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
        sampler = PgWaits(services.database_url)
        report = worker.wait_done()
        cpu = meter.stop(_groups(services, worker))
        waits = sampler.stop()
        worker.close()
    finally:
        worker.kill()
    services.forget_sessions(client_id)
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
        "pg_waits": waits,
        "worker": report,
        "tables": services.counts(),
    }


@contextlib.contextmanager
def _pair(
    services: Services, group: str, log_dir: Path, **options: bool
) -> Iterator[list[WorkerProcess]]:
    """Two workers in shared-subscription group `group`, client ids `<group>-1` and -2."""
    workers: list[WorkerProcess] = []
    try:
        for n in (1, 2):
            log_path = log_dir / f"worker-{group}-{n}.log"
            worker = WorkerProcess(
                services.settings, client_id=f"{group}-{n}", log_path=log_path,
                shared_group=group, **options,
            )  # fmt: skip
            workers.append(worker)
        yield workers
    finally:
        for worker in workers:
            worker.kill()


def _measure_pair(
    services: Services, workers: list[WorkerProcess], expected: int,
    publish: Callable[[], Published] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any], Published | None]:  # fmt: skip
    """From both workers ready (and `publish()` run) to `expected` uplinks committed
    between them: their reports, {cpu_s, pg_waits}, and the publication."""
    meter = CpuMeter()
    meter.start(_groups(services, *workers))
    sampler = PgWaits(services.database_url)
    published = publish() if publish else None
    completed = wait_committed(workers, expected)
    cpu = meter.stop(_groups(services, *workers))
    waits = sampler.stop()
    for worker in workers:
        if completed:
            worker.done()
        else:
            worker.stop()
    reports = [worker.wait_done() for worker in workers]
    for worker in workers:
        worker.close()
    return reports, {"cpu_s": cpu, "pg_waits": waits}, published


def _pair_result(
    services: Services, events: Sequence[SimEvent], reports: list[dict[str, Any]],
    *, started: float,
) -> dict[str, Any]:  # fmt: skip
    """The figures of a two-worker phase, timed from `started` to the last commit."""
    received = sum(r["received"] for r in reports)
    uplinks = sum(r["uplinks"] for r in reports)
    elapsed = max(r["last_commit"] or 0.0 for r in reports) - started
    return {
        "workers": reports,
        "messages": len(events),
        "uplinks": sum(event.event == "up" for event in events),
        "committed_uplinks": uplinks,
        "completed": all(r["completed"] for r in reports),
        "elapsed_s": elapsed,
        "uplinks_per_s": uplinks / elapsed,
        "messages_per_s": received / elapsed,
        "shares": [r["received"] / max(received, 1) for r in reports],
        "tables": services.counts(),
    }


def shared_throughput(
    services: Services, events: Sequence[SimEvent], log_dir: Path, publish_unpaced: Publisher
) -> dict[str, Any]:
    """Phase 1 with two workers on one MQTT 5 shared subscription."""
    services.reset()
    group = f"bench-shared-{os.getpid()}"
    expected = sum(event.event == "up" for event in events)
    with _pair(services, group, log_dir, progress=True) as workers:
        for worker in workers:
            worker.wait_ready()
        reports, measured, published = _measure_pair(
            services, workers, expected, lambda: publish_unpaced(services.settings.mqtt_url, events)
        )
    services.forget_sessions(f"{group}-1", f"{group}-2")
    assert published is not None
    return {
        **_pair_result(services, events, reports, started=published.started),
        "publish_rate": published.rate,
        "publish_unacked": published.unacked,
        **measured,
    }


def shared_drain(
    services: Services, events: Sequence[SimEvent], log_dir: Path, publish_unpaced: Publisher
) -> dict[str, Any]:
    """Phase 1b with two workers: both sessions hold their share of the queued events.

    Both members of the group connect once (creating their persistent sessions and the
    shared subscription) and stop; the events are published while neither runs; mosquitto
    queues each message for one member, round robin. Both then start again, at once;
    timed from the first CONNACK to the last uplink committed by either.
    """
    services.reset()
    group = f"bench-shared-drain-{os.getpid()}"
    expected = sum(event.event == "up" for event in events)
    with _pair(services, group, log_dir) as first:
        for worker in first:
            worker.wait_ready()
        for worker in first:
            worker.stop()
        for worker in first:
            worker.wait_done()
            worker.close()
    published = publish_unpaced(services.settings.mqtt_url, events)
    with _pair(services, group, log_dir, resume=True, progress=True) as workers:
        connected = [worker.wait_ready()["connected_at"] for worker in workers]
        reports, measured, _ = _measure_pair(services, workers, expected)
    services.forget_sessions(f"{group}-1", f"{group}-2")
    return {
        **_pair_result(services, events, reports, started=min(connected)),
        "connect_skew_s": max(connected) - min(connected),
        "publish_alone_rate": published.rate,
        "publish_unacked": published.unacked,
        **measured,
    }


def latency(
    services: Services, simulator: FleetSimulator, *, rate: float, duration: float, log_dir: Path
) -> dict[str, Any]:
    """Events published at `rate`/s for `duration` s, stamped with the wall clock when sent."""
    services.reset()
    client_id = f"bench-latency-{os.getpid()}"
    worker = WorkerProcess(
        services.settings, client_id=client_id, log_path=log_dir / "worker-latency.log",
        latency=True,
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
    services.forget_sessions(client_id)
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
