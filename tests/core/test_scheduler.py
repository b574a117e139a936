"""The scheduler runs each job's slot once across processes: two real OS processes
schedule the same jobs against one database at the same time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from alerts import notify
from core import scheduler
from core.registry import Job
from core.settings import Settings
from tests.kit.identity import add_user
from tests.kit.notifications import add_incident, add_tenant, set_preference
from tests.kit.smtp import smtp_server
from tests.kit.waiting import wait_until

ROOT = Path(__file__).parents[2]

# One civicsense process's scheduler, with the given jobs, until its stdin closes; prints
# "ready" once started, and its counters at the end.
_PROCESS = """
import json, sys
from core import scheduler
from core.registry import Job
from tests.conftest import base_settings

database_url, smtp_url, jobs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
settings = base_settings(database_url=database_url, smtp_url=smtp_url or None)
running = scheduler.start(settings, [Job(*job) for job in jobs])
print("ready", flush=True)
sys.stdin.read()
running.shutdown(wait=True)
print(json.dumps(scheduler.COUNTERS.snapshot()), flush=True)
"""


def record_run(settings: Settings) -> None:
    """A job that writes down each of its runs, and by which process."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("INSERT INTO job_log (pid) VALUES (%s)", (os.getpid(),))


@contextmanager
def processes(
    count: int, database_url: str, jobs: list[Job], smtp_url: str = ""
) -> Iterator[list[dict[str, dict[str, float]]]]:
    """`count` scheduler processes running `jobs`; their counters once the block ends."""
    spec = json.dumps([[job.name, job.target, job.every_seconds] for job in jobs])
    counters: list[dict[str, dict[str, float]]] = []
    with ExitStack() as stack:
        running = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", _PROCESS, database_url, smtp_url, spec],
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
            for _ in range(count)
        ]
        for process in running:
            assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield counters
        for process in running:
            out, _ = process.communicate(input="", timeout=60)
            assert process.returncode == 0
            counters.append(json.loads(out.strip().splitlines()[-1]))


def count(conn: psycopg.Connection, query: str) -> int:
    row = conn.execute(query).fetchone()
    return int(row[0]) if row else 0


def test_two_processes_run_each_slot_once(conn: psycopg.Connection, database_url: str) -> None:
    conn.execute("CREATE TABLE job_log (pid integer NOT NULL, at timestamptz DEFAULT now())")
    job = Job("test.record", "tests.core.test_scheduler:record_run", 1)
    with processes(2, database_url, [job]) as counters:
        wait_until(lambda: count(conn, "SELECT count(*) FROM job_log") >= 6, timeout=60)
    runs = count(conn, "SELECT count(*) FROM job_log")
    slots = count(conn, "SELECT count(*) FROM scheduler_runs WHERE job = 'test.record'")
    assert runs == slots  # no slot ran twice
    per_process = [c[job.name] for c in counters]
    assert sum(c["runs"] for c in per_process) == runs
    assert all(c["runs"] + c["skipped"] >= 3 for c in per_process)  # both kept trying
    assert sum(c["skipped"] for c in per_process) >= runs - 2  # the other one skipped
    outcomes = conn.execute("SELECT DISTINCT outcome FROM scheduler_runs").fetchall()
    assert outcomes == [("ok",)]


def test_a_failing_job_is_counted_and_recorded(
    conn: psycopg.Connection, settings: Settings
) -> None:
    job = Job("test.failing", "tests.core.test_scheduler:record_run", 60)  # no job_log table
    before = scheduler.COUNTERS.snapshot().get(job.name, {}).get("failures", 0)
    assert scheduler.run_job(settings, job) == "failed"
    assert scheduler.run_job(settings, job) == "skipped"  # that slot is done, failed or not
    assert scheduler.COUNTERS.snapshot()[job.name]["failures"] == before + 1
    ((outcome, error),) = conn.execute("SELECT outcome, error FROM scheduler_runs").fetchall()
    assert outcome == "failed" and "job_log" in error


def test_two_processes_send_each_digest_once(conn: psycopg.Connection, database_url: str) -> None:
    tenant_id = add_tenant(conn)
    for name in ("fm", "tech"):
        user = add_user(conn, tenant_id=tenant_id, email=f"{name}@lyon.fr",
                        roles=["facility_manager"])  # fmt: skip
        set_preference(conn, tenant_id, user["id"], mode="digest", digest_hour=0)
    notify.incident_event(conn, add_incident(conn, tenant_id), "opened")
    yesterday = datetime.now(UTC) - timedelta(days=1, hours=1)
    conn.execute("UPDATE notifications SET created_at = %s", (yesterday,))
    jobs = [Job("alerts.notifications.digests", "alerts.digest:digest_job", 1)]
    with smtp_server() as server, processes(2, database_url, jobs, server.url):
        wait_until(lambda: len(server.messages) >= 2, timeout=60)
        done = "SELECT count(*) FROM scheduler_runs WHERE outcome IS NOT NULL"
        settled = count(conn, done)
        wait_until(lambda: count(conn, done) >= settled + 3, timeout=60)  # more runs, no mail
        messages = server.messages
    assert sorted(m.rcpt_tos[0] for m in messages) == ["fm@lyon.fr", "tech@lyon.fr"]
    assert count(conn, "SELECT count(*) FROM notification_digests") == 2
