"""`civicsense catalog ...`."""

from __future__ import annotations

from pathlib import Path

import click
import psycopg
from pydantic import ValidationError

from core.audit import cli_actor
from core.cli import require_database
from core.settings import Settings

from . import seed, solutions


@click.group()
def catalog() -> None:
    """The solution catalogue."""


@catalog.command("load")
@click.argument(
    "file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=seed.SHIPPED,
)
@click.pass_obj
def load(settings: Settings, file: Path) -> None:
    """Load a catalogue FILE (JSON, the shape of catalog/data/catalogue.json, the default).

    New solutions are created and brought to the file's status; changed ones get a new
    version; statuses of existing solutions are left to the operator. Loading the same
    file again changes nothing.
    """
    try:
        catalogue = seed.read_file(file)
    except ValidationError as exc:
        raise click.ClickException(f"{file.name}: {exc}") from None
    with psycopg.connect(require_database(settings), autocommit=True) as conn:
        try:
            report = seed.load(conn, cli_actor(), catalogue, source=file.name)
        except (solutions.Invalid, solutions.Conflict, ValidationError) as exc:
            raise click.ClickException(f"{file.name}: {exc}") from None
    click.echo(
        f"{file.name}: {len(report.domains_added)} domain(s) added, {len(report.created)} "
        f"solution(s) created, {len(report.updated)} updated, {len(report.unchanged)} unchanged"
    )
