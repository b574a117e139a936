"""Scheduled jobs of the installed packages, run by APScheduler in a background thread."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler

from .registry import modules, resolve
from .settings import Settings

log = logging.getLogger("civicsense.scheduler")


def _run(name: str, target: str, settings: Settings) -> None:
    try:
        resolve(target)(settings)
    except Exception:
        log.exception("job %s failed", name)


def start(settings: Settings) -> BackgroundScheduler:
    """Start every package's jobs: once now, then at their interval."""
    scheduler = BackgroundScheduler(timezone=UTC)
    for module in modules():
        for job in module.jobs:
            scheduler.add_job(
                _run,
                "interval",
                seconds=job.every_seconds,
                args=(job.name, job.target, settings),
                id=job.name,
                name=job.name,
                next_run_time=datetime.now(UTC),
                coalesce=True,
                max_instances=1,
            )
    scheduler.start()
    return scheduler
