"""`civicsense export` and `civicsense import`: a town's data out, and back in."""

from __future__ import annotations

from pathlib import Path

import click
import psycopg

from ..audit import cli_actor
from ..cli import require_database
from ..settings import Settings
from .archive import ArchiveError
from .export import ExportError, export_tenant
from .import_ import ImportRefused, import_archive

#: what comes back unusable, and what to do about it
_AFTER_IMPORT = {
    "users": "user account(s) have no password and no second factor: give each a new one"
    " with `civicsense user set-password EMAIL --password-stdin`",
    "api_keys": "API key(s) cannot authenticate: issue new ones (civicsense apikey create)",
    "payment_providers": "payment operator(s) have no signing secret: register them again",
    "notification_routes": "notification route(s): webhooks need their signing secret again",
}


@click.command("export")
@click.option("--tenant", "slug", required=True, help="Slug of the tenant to export.")
@click.option(
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Archive to write (.tar.gz).",
)
@click.pass_obj
def export_command(settings: Settings, slug: str, output: Path) -> None:
    """Write all of a tenant's data (no secrets) as CSV files with a manifest, in one archive."""
    with psycopg.connect(require_database(settings), autocommit=True) as conn:
        try:
            summary = export_tenant(conn, slug, output, cli_actor())
        except ExportError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(
        f"exported tenant {slug}: {sum(summary.rows.values())} rows in"
        f" {len(summary.rows)} tables to {output}"
    )
    click.echo(f"sha256 {summary.sha256}")


@click.command("import")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def import_command(settings: Settings, archive: Path) -> None:
    """Load a tenant's export archive into this instance (in which the tenant must not
    exist, nor any of its ids)."""
    with psycopg.connect(require_database(settings), autocommit=True) as conn:
        try:
            summary = import_archive(conn, archive, cli_actor())
        except (ArchiveError, ImportRefused) as exc:
            raise click.ClickException(f"{exc} (nothing was imported)") from None
    click.echo(f"imported tenant {summary.tenant} (id {summary.tenant_id})")
    for name, load in summary.tables.items():
        line = f"  {name}: {load.owned} rows"
        if load.referenced_added or load.referenced_present:
            line += (
                f", referenced rows {load.referenced_added} added,"
                f" {load.referenced_present} already here"
            )
        click.echo(line)
    for table, notice in _AFTER_IMPORT.items():
        if count := summary.owned(table):
            click.echo(f"{count} {notice}")
