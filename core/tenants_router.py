"""`/tenants`: operators create and edit municipalities; everyone else sees their own."""

from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, HTTPException, Path, status

from . import audit, tenants
from .identity.principal import Caller, PrivilegedConn, check
from .tenants import SLUG_PATTERN, TenantCreate, TenantRead, TenantUpdate

router = APIRouter(prefix="/tenants", tags=["tenants"])

Slug = Annotated[str, Path(pattern=SLUG_PATTERN, description="the tenant's slug")]


def _operator(caller: Caller) -> bool:
    return caller.tenant_id is None and "tenants:manage" in caller.permissions


@router.get("", response_model=list[TenantRead])
def list_tenants(conn: PrivilegedConn, caller: Caller) -> list[dict[str, object]]:
    """Every municipality for operators; one's own otherwise."""
    check(caller, ("tenants:read",))
    return [r for r in tenants.get_all(conn) if _operator(caller) or r["id"] == caller.tenant_id]


@router.post("", response_model=TenantRead, status_code=status.HTTP_201_CREATED)
def create_tenant(conn: PrivilegedConn, caller: Caller, body: TenantCreate) -> dict[str, object]:
    """A new municipality (operators)."""
    check(caller, ("tenants:manage",))
    try:
        with conn.transaction():
            tenants.create(conn, body)
    except psycopg.errors.UniqueViolation:
        raise HTTPException(409, f"tenant {body.slug!r} already exists") from None
    audit.record(conn, caller.actor(), "tenant.create", target=body.slug)
    row = tenants.get(conn, body.slug)
    assert row is not None
    return row


@router.get("/{slug}", response_model=TenantRead)
def get_tenant(conn: PrivilegedConn, caller: Caller, slug: Slug) -> dict[str, object]:
    """One municipality: operators see any, others only their own (404 for the rest)."""
    check(caller, ("tenants:read",))
    row = tenants.get(conn, slug)
    if row is None or not (_operator(caller) or row["id"] == caller.tenant_id):
        raise HTTPException(404, f"no tenant {slug!r}")
    return row


@router.patch("/{slug}", response_model=TenantRead)
def update_tenant(
    conn: PrivilegedConn, caller: Caller, slug: Slug, body: TenantUpdate
) -> dict[str, object]:
    """Edit a municipality (operators)."""
    check(caller, ("tenants:manage",))
    row = tenants.update(conn, slug, body)
    if row is None:
        raise HTTPException(404, f"no tenant {slug!r}")
    audit.record(
        conn, caller.actor(), "tenant.update", target=slug, tenant_id=row["id"],
        details=body.model_dump(exclude_unset=True),
    )  # fmt: skip
    return row
