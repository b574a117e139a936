"""Zone and bay routes (under /parking)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status

from core.identity.principal import Scope, scoped

from . import places
from .models import BayCreate, BayRead, BayUpdate, ZoneCreate, ZoneRead, ZoneUpdate

router = APIRouter()

Read = Annotated[Scope, Depends(scoped("parking:read"))]
Manage = Annotated[Scope, Depends(scoped("parking:manage"))]


@contextlib.contextmanager
def domain_errors() -> Iterator[None]:
    """Answer the places' errors: NotFound 404, Conflict 409."""
    try:
        yield
    except places.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except places.Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.get("/zones", response_model=list[ZoneRead], tags=["parking zones"])
def list_zones(scope: Read, active: bool | None = None) -> list[dict[str, Any]]:
    """The town's tariff zones."""
    return places.zones(scope.conn, active=active)


@router.post("/zones", response_model=ZoneRead, status_code=201, tags=["parking zones"])
def create_zone(scope: Manage, body: ZoneCreate) -> dict[str, Any]:
    """Create a tariff zone: regulated hours, tariff grid, grace minutes."""
    with domain_errors():
        return places.create_zone(scope.conn, scope.actor, scope.tenant_id, body)


@router.get("/zones/{zone}", response_model=ZoneRead, tags=["parking zones"])
def get_zone(scope: Read, zone: str) -> dict[str, Any]:
    """One zone by its code."""
    with domain_errors():
        return places.zone(scope.conn, zone)


@router.patch("/zones/{zone}", response_model=ZoneRead, tags=["parking zones"])
def update_zone(scope: Manage, zone: str, body: ZoneUpdate) -> dict[str, Any]:
    """Change a zone (hours, tariff, grace...); `active: false` retires it."""
    with domain_errors():
        return places.update_zone(scope.conn, scope.actor, scope.tenant_id, zone, body)


@router.get("/bays", response_model=list[BayRead], tags=["parking bays"])
def list_bays(
    scope: Read,
    zone: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    """The town's bays, by zone and code."""
    return places.bays(scope.conn, zone=zone, limit=limit, offset=offset)


@router.post("/bays", response_model=BayRead, status_code=201, tags=["parking bays"])
def create_bay(scope: Manage, body: BayCreate) -> dict[str, Any]:
    """Create a bay in a zone, with its occupancy sensor."""
    with domain_errors():
        return places.create_bay(scope.conn, scope.actor, scope.tenant_id, body)


@router.get("/bays/{bay}", response_model=BayRead, tags=["parking bays"])
def get_bay(scope: Read, bay: str) -> dict[str, Any]:
    """One bay by its code."""
    with domain_errors():
        return places.bay(scope.conn, bay)


@router.patch("/bays/{bay}", response_model=BayRead, tags=["parking bays"])
def update_bay(scope: Manage, bay: str, body: BayUpdate) -> dict[str, Any]:
    """Move a bay, change its kind or zone, link or unlink its sensor."""
    with domain_errors():
        return places.update_bay(scope.conn, scope.actor, scope.tenant_id, bay, body)


@router.delete("/bays/{bay}", status_code=204, tags=["parking bays"])
def delete_bay(scope: Manage, bay: str) -> Response:
    """Remove a bay no payment session names."""
    with domain_errors():
        places.delete_bay(scope.conn, scope.actor, scope.tenant_id, bay)
    return Response(status_code=204)
