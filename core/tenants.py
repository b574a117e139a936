"""Tenants (municipalities): create and look up."""

from __future__ import annotations

import psycopg
from pydantic import BaseModel, ConfigDict, Field


class TenantCreate(BaseModel):
    """A new municipality."""

    model_config = ConfigDict(str_strip_whitespace=True)

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: str = Field(min_length=1, max_length=200)
    timezone: str = "Europe/Paris"


class TenantNotFound(LookupError):
    """No tenant with that slug."""


def create(conn: psycopg.Connection, tenant: TenantCreate) -> int:
    """Insert a tenant; returns its id. Raises psycopg.errors.UniqueViolation if taken."""
    row = conn.execute(
        "INSERT INTO tenants (slug, name, timezone) VALUES (%s, %s, %s) RETURNING id",
        (tenant.slug, tenant.name, tenant.timezone),
    ).fetchone()
    assert row is not None
    return int(row[0])


def get_or_create(conn: psycopg.Connection, tenant: TenantCreate) -> int:
    """The id of the tenant with this slug, created if absent."""
    row = conn.execute(
        "INSERT INTO tenants (slug, name, timezone) VALUES (%s, %s, %s)"
        " ON CONFLICT (slug) DO UPDATE SET slug = EXCLUDED.slug RETURNING id",
        (tenant.slug, tenant.name, tenant.timezone),
    ).fetchone()
    assert row is not None
    return int(row[0])


def id_for_slug(conn: psycopg.Connection, slug: str) -> int:
    """The id of tenant `slug`, or TenantNotFound."""
    row = conn.execute("SELECT id FROM tenants WHERE slug = %s", (slug,)).fetchone()
    if row is None:
        raise TenantNotFound(f"no tenant {slug!r} (create it: civicsense tenant create {slug})")
    return int(row[0])
