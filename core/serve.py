"""`civicsense serve`: the API (and, later, the dashboards) with the scheduler."""

from __future__ import annotations

import click
import uvicorn

from . import scheduler
from .app import create_app
from .cli import require_database
from .settings import Settings


def run_server(settings: Settings) -> None:
    """Serve the app until interrupted; the scheduler runs alongside."""
    jobs = scheduler.start(settings)
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
        )
    finally:
        jobs.shutdown(wait=False)


@click.command()
@click.option("--host", envvar="CIVICSENSE_HOST", default="127.0.0.1", show_default=True)
@click.option("--port", envvar="CIVICSENSE_PORT", default=8000, show_default=True, type=int)
@click.pass_obj
def serve(settings: Settings, host: str, port: int) -> None:
    """Serve the HTTP API (and the ChirpStack HTTP integration)."""
    require_database(settings)
    if settings.secret_key is None:
        raise click.UsageError(
            "set CIVICSENSE_SECRET_KEY (civicsense secret-key prints one): it signs the"
            " access tokens and encrypts stored secrets"
        )
    run_server(settings.model_copy(update={"host": host, "port": port}))
