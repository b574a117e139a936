"""Tenants (municipalities): validation, create, look up, list, edit."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import available_timezones

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, field_validator

_LA_POSTE_SIREN = "356000000"  # its establishments' SIRETs follow another checksum


def siret_is_valid(siret: str) -> bool:
    """14 digits with a valid Luhn checksum (La Poste: digit sum a multiple of 5)."""
    if len(siret) != 14 or not siret.isdigit():
        return False
    if siret.startswith(_LA_POSTE_SIREN) and siret != _LA_POSTE_SIREN + "00048":
        return sum(int(d) for d in siret) % 5 == 0
    total = 0
    for index, digit in enumerate(int(d) for d in reversed(siret)):
        doubled = digit * 2 if index % 2 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return total % 10 == 0


def _siret(value: str | None) -> str | None:
    if value is None:
        return None
    digits = value.replace(" ", "")
    if not siret_is_valid(digits):
        raise ValueError("SIRET must be 14 digits with a valid checksum")
    return digits


def _timezone(value: str) -> str:
    if value not in available_timezones():
        raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Paris)")
    return value


INSEE_PATTERN = r"^([0-9]{2}|2A|2B)[0-9]{3}$"
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


class TenantCreate(BaseModel):
    """A new municipality."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    slug: str = Field(pattern=SLUG_PATTERN)
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    siret: str | None = Field(None, description="14 digits, Luhn checksum")
    insee_code: str | None = Field(None, pattern=INSEE_PATTERN, description="commune code")
    timezone: str = "Europe/Paris"

    _check_siret = field_validator("siret")(_siret)
    _check_timezone = field_validator("timezone")(_timezone)


DEMO_TENANT = TenantCreate(slug="demo", name="Ville de Démo")


class TenantUpdate(BaseModel):
    """Changes to a municipality (fields left out are kept)."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    siret: str | None = None
    insee_code: str | None = Field(None, pattern=INSEE_PATTERN)
    timezone: str | None = None

    _check_siret = field_validator("siret")(_siret)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str | None) -> str | None:
        return None if value is None else _timezone(value)


class TenantRead(BaseModel):
    """A municipality as the API shows it."""

    id: int
    slug: str
    name: str
    siret: str | None
    insee_code: str | None
    timezone: str
    created_at: datetime


class TenantNotFound(LookupError):
    """No tenant with that slug."""


_SELECT = "SELECT id, slug, name, siret, insee_code, timezone, created_at FROM tenants"


def create(conn: psycopg.Connection, tenant: TenantCreate) -> int:
    """Insert a tenant; returns its id. Raises psycopg.errors.UniqueViolation if taken."""
    row = conn.execute(
        "INSERT INTO tenants (slug, name, siret, insee_code, timezone)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (tenant.slug, tenant.name, tenant.siret, tenant.insee_code, tenant.timezone),
    ).fetchone()
    assert row is not None
    return int(row[0])


def get_or_create(conn: psycopg.Connection, tenant: TenantCreate) -> int:
    """The id of the tenant with this slug, created if absent."""
    row = conn.execute(
        "INSERT INTO tenants (slug, name, siret, insee_code, timezone)"
        " VALUES (%s, %s, %s, %s, %s)"
        " ON CONFLICT (slug) DO UPDATE SET slug = EXCLUDED.slug RETURNING id",
        (tenant.slug, tenant.name, tenant.siret, tenant.insee_code, tenant.timezone),
    ).fetchone()
    assert row is not None
    return int(row[0])


def id_for_slug(conn: psycopg.Connection, slug: str) -> int:
    """The id of tenant `slug`, or TenantNotFound."""
    row = conn.execute("SELECT id FROM tenants WHERE slug = %s", (slug,)).fetchone()
    if row is None:
        raise TenantNotFound(f"no tenant {slug!r} (create it: civicsense tenant create {slug})")
    return int(row[0])


def get(conn: psycopg.Connection, slug: str) -> dict[str, Any] | None:
    """A tenant by slug (what the connection may see of it)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_SELECT + " WHERE slug = %s", (slug,)).fetchone()


def get_all(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Every tenant the connection may see, by name."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_SELECT + " ORDER BY name, slug").fetchall()


def update(conn: psycopg.Connection, slug: str, changes: TenantUpdate) -> dict[str, Any] | None:
    """Apply `changes` to tenant `slug`; the updated row, or None if there is none."""
    values = changes.model_dump(exclude_unset=True)
    if not values:
        return get(conn, slug)
    query = sql.SQL(
        "UPDATE tenants SET {} WHERE slug = %(slug)s"
        " RETURNING id, slug, name, siret, insee_code, timezone, created_at"
    ).format(
        sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(column))
            for column in values
        )
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {**values, "slug": slug}).fetchone()
