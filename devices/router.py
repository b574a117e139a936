"""Device routes (readings for now; onboarding comes with the devices issue)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from pydantic import AwareDatetime, BaseModel

from core import readings
from core.identity.principal import Scope, scoped

from . import repository
from .models import normalise_eui

router = APIRouter(prefix="/devices", tags=["devices"])


class ReadingOut(BaseModel):
    """One decoded value."""

    time: datetime
    quantity: str
    value: float


def _dev_eui(dev_eui: Annotated[str, Path(description="16 hex digits, any separator")]) -> str:
    try:
        return normalise_eui(dev_eui)
    except ValueError as exc:
        raise HTTPException(422, f"dev_eui {exc}") from None


@router.get("/{dev_eui}/readings", response_model=list[ReadingOut])
def device_readings(
    scope: Annotated[Scope, Depends(scoped("readings:read"))],
    dev_eui: Annotated[str, Depends(_dev_eui)],
    quantity: Annotated[str | None, Query(max_length=64)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> list[dict[str, object]]:
    """Readings of a device of the tenant, newest first."""
    conn = scope.conn
    device = repository.get_live(conn, dev_eui)
    if device is None:
        raise HTTPException(404, f"no device with DevEUI {dev_eui}")
    if since and until and since >= until:
        raise HTTPException(422, "since must be before until")
    return readings.for_device(
        conn, device_id=device["id"], quantity=quantity, since=since, until=until, limit=limit
    )
