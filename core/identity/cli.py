"""`civicsense user ...` and `civicsense apikey ...`: the operator's way in."""

from __future__ import annotations

import sys

import click
import psycopg
from pydantic import ValidationError

from .. import tenants
from ..audit import cli_actor
from ..cli import require_database
from ..settings import Settings
from . import service
from .models import UserCreate
from .permissions import PERMISSIONS, ROLES


def _tenant_id(conn: psycopg.Connection, slug: str | None) -> int | None:
    try:
        return tenants.id_for_slug(conn, slug) if slug else None
    except tenants.TenantNotFound as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def user() -> None:
    """Users."""


@user.command("create")
@click.argument("email")
@click.option("--tenant", "slug", help="Tenant slug (omit for a platform_admin).")
@click.option("--role", "roles", multiple=True, required=True, type=click.Choice(sorted(ROLES)))
@click.option("--name", "display_name", help="Display name.")
@click.option("--password-stdin", is_flag=True, required=True,
              help="Read the password from standard input (first line).")  # fmt: skip
@click.pass_obj
def user_create(
    settings: Settings,
    email: str,
    slug: str | None,
    roles: tuple[str, ...],
    display_name: str | None,
    password_stdin: bool,
) -> None:
    """Create a user; administrators enrol a TOTP second factor at their first login."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else ""
    try:
        data = UserCreate(
            email=email, display_name=display_name, password=password, roles=list(roles)
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        raise click.BadParameter(f"{error['loc'][0]}: {error['msg']}") from None
    with psycopg.connect(require_database(settings)) as conn:
        tenant_id = _tenant_id(conn, slug)
        try:
            created = service.create_user(conn, cli_actor(), tenant_id=tenant_id, data=data)
        except service.IdentityError as exc:
            raise click.ClickException(exc.detail) from None
    click.echo(f"created user {created['email']} (id {created['id']}, {', '.join(roles)})")


@user.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, required=True,
              help="Read the new password from standard input (first line).")  # fmt: skip
@click.pass_obj
def user_set_password(settings: Settings, email: str, password_stdin: bool) -> None:
    """Set a user's password (after `civicsense import`, or a lost one); their sessions end."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else ""
    with psycopg.connect(require_database(settings)) as conn:
        try:
            service.set_password(conn, cli_actor(), email, password)
        except service.IdentityError as exc:
            raise click.ClickException(exc.detail) from None
    click.echo(f"password set for {email}; their sessions and tokens ended")


@click.group()
def apikey() -> None:
    """API keys for integrations."""


@apikey.command("create")
@click.option("--tenant", "slug", required=True, help="Tenant slug.")
@click.option("--name", required=True, help="What the key is for, e.g. 'SIG export'.")
@click.option("--permission", "permissions", multiple=True, required=True,
              type=click.Choice(sorted(PERMISSIONS)))  # fmt: skip
@click.pass_obj
def apikey_create(settings: Settings, slug: str, name: str, permissions: tuple[str, ...]) -> None:
    """Create an API key; it is printed once, on standard output, and never again."""
    with psycopg.connect(require_database(settings)) as conn:
        tenant_id = _tenant_id(conn, slug)
        assert tenant_id is not None
        created = service.issue_api_key(
            conn, cli_actor(), tenant_id=tenant_id, name=name, permissions=list(permissions),
            created_by=None,
        )  # fmt: skip
    click.echo(f"API key {name!r} ({created['prefix']}) for {slug}; shown only now:", err=True)
    click.echo(created["key"])
