"""Scheduled jobs of the installed packages, run by APScheduler in a background thread,
each run happening once across every civicsense process sharing the database.

Time is cut into slots of a job's interval since the Unix epoch, and every process fires
a job at the slots' boundaries (its interval trigger starts at the epoch). Before running,
a process takes the job's PostgreSQL advisory lock on a connection of its own (held for
the run: a run still going in another process makes this one skip), then claims the slot
in `scheduler_runs` (unique on job and slot): the first process claims it, any other one
finds the row and skips. The slot is read from the database's clock and rounded to the
nearest boundary, so processes whose clocks disagree by less than half an interval
still agree on the slot. A slot that failed is not retried; the next slot runs again.
Each process also runs every job once at start (a slot another process already ran is
skipped).

Runs, failures and skips are counted per job in `COUNTERS` (for metrics).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler

from .registry import Job, modules, resolve
from .settings import Settings

log = logging.getLogger("civicsense.scheduler")

Outcome = Literal["ok", "failed", "skipped"]

#: How long the record of past runs is kept.
KEEP_RUNS = timedelta(days=7)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ERROR_CHARS = 2000


@dataclass
class JobCounter:
    """One job's runs in this process."""

    runs: int = 0
    failures: int = 0
    skipped: int = 0
    last_duration_s: float = 0.0
    last_success: float = 0.0  # Unix time, 0 before the first success


class Counters:
    """Per-job counters, safe across the scheduler's threads."""

    def __init__(self) -> None:
        self._jobs: dict[str, JobCounter] = {}
        self._lock = threading.Lock()

    def count(self, job: str, outcome: Outcome, duration_s: float = 0.0) -> None:
        """Count one attempt of `job`."""
        with self._lock:
            counter = self._jobs.setdefault(job, JobCounter())
            if outcome == "skipped":
                counter.skipped += 1
                return
            counter.runs += 1
            counter.last_duration_s = duration_s
            if outcome == "failed":
                counter.failures += 1
            else:
                counter.last_success = time.time()

    def snapshot(self) -> dict[str, dict[str, float]]:
        """Every job's counters, as plain numbers."""
        with self._lock:
            return {name: asdict(counter) for name, counter in self._jobs.items()}


COUNTERS = Counters()


def lock_key(job_name: str) -> int:
    """The job's advisory lock: a stable signed 64-bit number from its name."""
    digest = hashlib.sha256(f"civicsense.job:{job_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


_SLOT = "SELECT round(extract(epoch FROM clock_timestamp()) / %s)::bigint"
_CLAIM = """
INSERT INTO scheduler_runs (job, slot, runner) VALUES (%s, %s, %s)
ON CONFLICT (job, slot) DO NOTHING RETURNING slot
"""
_FORGET = "DELETE FROM scheduler_runs WHERE job = %s AND slot < %s"
_FINISH = """
UPDATE scheduler_runs SET finished_at = clock_timestamp(), outcome = %s, error = %s
WHERE job = %s AND slot = %s
"""


def run_job(settings: Settings, job: Job) -> Outcome:
    """Run `job` unless its current slot ran (or is running) in some process; the outcome.
    A failure is logged and counted, never raised: the scheduler goes on."""
    runner = f"{socket.gethostname()}:{os.getpid()}"
    key = lock_key(job.name)
    try:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            locked = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
            if not (locked and locked[0]):
                COUNTERS.count(job.name, "skipped")
                return "skipped"
            row = conn.execute(_SLOT, (job.every_seconds,)).fetchone()
            assert row is not None
            slot = int(row[0])
            if conn.execute(_CLAIM, (job.name, slot, runner)).fetchone() is None:
                COUNTERS.count(job.name, "skipped")
                return "skipped"
            keep_slots = int(KEEP_RUNS.total_seconds() // job.every_seconds) + 1
            conn.execute(_FORGET, (job.name, slot - keep_slots))
            outcome, error = _execute(settings, job)
            conn.execute(_FINISH, (outcome, error, job.name, slot))
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
            return outcome
    except psycopg.Error:
        log.exception("job %s not run: the database could not be reached", job.name)
        COUNTERS.count(job.name, "failed")
        return "failed"


def _execute(settings: Settings, job: Job) -> tuple[Outcome, str | None]:
    """Run the job's target, timed and counted; its error text when it failed."""
    started = time.monotonic()
    try:
        resolve(job.target)(settings)
    except Exception as exc:
        log.exception("job %s failed", job.name)
        COUNTERS.count(job.name, "failed", time.monotonic() - started)
        return "failed", f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]
    COUNTERS.count(job.name, "ok", time.monotonic() - started)
    return "ok", None


def installed_jobs() -> list[Job]:
    """Every installed package's jobs."""
    return [job for module in modules() for job in module.jobs]


def start(settings: Settings, jobs: Iterable[Job] | None = None) -> BackgroundScheduler:
    """Start `jobs` (default: every package's): once now, then at their slots' boundaries."""
    scheduler = BackgroundScheduler(timezone=UTC)
    for job in installed_jobs() if jobs is None else jobs:
        scheduler.add_job(
            run_job,
            "interval",
            seconds=job.every_seconds,
            start_date=_EPOCH,
            args=(settings, job),
            id=job.name,
            name=job.name,
            next_run_time=datetime.now(UTC),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=max(1, job.every_seconds // 2),
        )
    scheduler.start()
    return scheduler
