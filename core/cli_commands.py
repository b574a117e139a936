"""core's CLI groups: `db` and `tenant`."""

from __future__ import annotations

import click
import psycopg
from pydantic import ValidationError

from . import audit, migrate, tenants
from .audit import cli_actor
from .cli import require_database
from .crypto import new_key
from .settings import Settings


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(settings: Settings) -> None:
    """Apply pending migrations."""
    url = require_database(settings)
    applied = migrate.upgrade(settings, url)
    click.echo(
        f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else "")
    )


@click.group()
def tenant() -> None:
    """Tenants (municipalities)."""


@tenant.command("create")
@click.argument("slug")
@click.option("--name", required=True, help="Display name, e.g. 'Ville de Lyon'.")
@click.option("--siret", help="14-digit SIRET of the municipality (checksum verified).")
@click.option("--insee", "insee_code", help="INSEE commune code, e.g. 74010.")
@click.option("--timezone", default="Europe/Paris", show_default=True)
@click.pass_obj
def tenant_create(
    settings: Settings,
    slug: str,
    name: str,
    siret: str | None,
    insee_code: str | None,
    timezone: str,
) -> None:
    """Create tenant SLUG."""
    try:
        data = tenants.TenantCreate(
            slug=slug, name=name, siret=siret, insee_code=insee_code, timezone=timezone
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        raise click.BadParameter(f"{field}: {error['msg']}") from None
    with psycopg.connect(require_database(settings)) as conn:
        try:
            tenant_id = tenants.create(conn, data)
        except psycopg.errors.UniqueViolation:
            raise click.ClickException(f"tenant {slug!r} already exists") from None
        audit.record(conn, cli_actor(), "tenant.create", target=slug, tenant_id=tenant_id)
    click.echo(f"created tenant {slug} (id {tenant_id})")


@click.command("secret-key")
def secret_key() -> None:
    """Print a new key for CIVICSENSE_SECRET_KEY."""
    click.echo(new_key())
