"""`civicsense serve`: the API and dashboards, with the scheduler unless it runs apart;
`civicsense scheduler`: the scheduled jobs alone (one container of a deployment)."""

from __future__ import annotations

import signal
import threading

import click
import uvicorn

from . import metrics, scheduler
from .app import create_app
from .cli import require_database
from .settings import Settings


def run_server(settings: Settings) -> None:
    """Serve the app until interrupted; the scheduler runs alongside unless disabled."""
    metrics.start_exporter(settings)
    jobs = scheduler.start(settings) if settings.scheduler else None
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            log_config=None,  # uvicorn's records go through ours (core.logs: text or JSON)
        )
    finally:
        if jobs is not None:
            jobs.shutdown(wait=False)


@click.command()
@click.option("--host", envvar="CIVICSENSE_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="CIVICSENSE_PORT", default=8000, show_default=True, type=int)
@click.option(
    "--scheduler/--no-scheduler",
    "with_scheduler",
    envvar="CIVICSENSE_SCHEDULER",
    default=True,
    show_default=True,
    help="Run the scheduled jobs in this process (off when `civicsense scheduler` runs apart).",
)
@click.pass_obj
def serve(settings: Settings, host: str, port: int, with_scheduler: bool) -> None:
    """Serve the HTTP API (and the ChirpStack HTTP integration)."""
    _require_secret_key(settings)
    run_server(
        settings.model_copy(update={"host": host, "port": port, "scheduler": with_scheduler})
    )


@click.command("scheduler")
@click.pass_obj
def scheduler_command(settings: Settings) -> None:
    """Run the scheduled jobs until SIGTERM or Ctrl-C (each slot runs once across processes)."""
    _require_secret_key(settings)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    metrics.start_exporter(settings)
    jobs = scheduler.start(settings)
    click.echo(f"scheduler running {len(scheduler.installed_jobs())} jobs")
    try:
        stop.wait()
    finally:
        jobs.shutdown(wait=True)


def _require_secret_key(settings: Settings) -> None:
    require_database(settings)
    if settings.secret_key is None:
        raise click.UsageError(
            "set CIVICSENSE_SECRET_KEY (civicsense secret-key prints one): it signs the"
            " access tokens and encrypts stored secrets"
        )
