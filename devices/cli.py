"""`civicsense devices ...`."""

from __future__ import annotations

from pathlib import Path

import click
import psycopg

from core import audit, tenants
from core.audit import cli_actor
from core.cli import require_database
from core.settings import Settings

from . import provisioning, service


@click.group()
def devices() -> None:
    """The device registry."""


@devices.command(
    "import",
    help=f"""Register the devices of a CSV FILE ({service.CSV_COLUMNS}).

    Valid lines are registered, invalid ones reported with their line number;
    importing the same file again changes nothing. Exits 1 if any line failed.
    Tags: `key=value` or `label` entries separated by `;`.
    """,
)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.pass_obj
def import_file(settings: Settings, file: Path, slug: str) -> None:
    """Register the devices of a CSV file (help text above, from the shared columns)."""
    with psycopg.connect(require_database(settings), autocommit=True) as conn:
        try:
            tenant_id = tenants.id_for_slug(conn, slug)
            results = service.import_csv(
                conn, settings, tenant_id=tenant_id, data=file.read_bytes()
            )
        except (tenants.TenantNotFound, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        counts: dict[str, int] = {}
        for result in results:
            counts[result.status] = counts.get(result.status, 0) + 1
        audit.record(
            conn, cli_actor(), "device.import", target=file.name, tenant_id=tenant_id,
            details=counts,
        )  # fmt: skip
    for result in results:
        if result.status == "error":
            click.echo(f"line {result.line}: {result.dev_eui or '-'}: {result.detail}", err=True)
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no lines"
    click.echo(f"{file.name}: {summary}")
    if counts.get("error"):
        raise SystemExit(1)


@devices.command("provision")
@click.pass_obj
def provision(settings: Settings) -> None:
    """Provision every registered device in ChirpStack now (the server does it every 30 s).

    Exits 1 if a device failed or ChirpStack was unavailable.
    """
    require_database(settings)
    report = provisioning.provision_pending(settings)
    if report.skipped:
        click.echo(report.skipped)
        return
    for dev_eui, error in sorted(report.errors.items()):
        click.echo(f"{dev_eui}: {error}", err=True)
    click.echo(f"{report.provisioned} provisioned, {report.failed} failed")
    if report.failed or report.unavailable:
        raise SystemExit(1)
