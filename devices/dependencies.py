"""What the device routes share: permissions, the DevEUI path parameter, the device lookup."""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import Depends, HTTPException, Path

from core.identity.principal import Scope, scoped

from . import repository
from .models import normalise_eui

Read = Annotated[Scope, Depends(scoped("devices:read"))]
Write = Annotated[Scope, Depends(scoped("devices:write"))]


def _dev_eui(dev_eui: Annotated[str, Path(description="16 hex digits, any separator")]) -> str:
    try:
        return normalise_eui(dev_eui)
    except ValueError as exc:
        raise HTTPException(422, f"dev_eui {exc}") from None


DevEui = Annotated[str, Depends(_dev_eui)]


def live_device(conn: psycopg.Connection, dev_eui: str) -> dict[str, Any]:
    """The tenant's device with this DevEUI (not decommissioned), or 404."""
    device = repository.get_live(conn, dev_eui)
    if device is None:
        raise HTTPException(404, f"no device with DevEUI {dev_eui}")
    return device
