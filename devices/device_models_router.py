"""`/device-models`: the supported device models, as technicians and the catalogue see them.

Global data, the same for every tenant: any caller holding `devices:read` may read it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from core.identity.principal import Caller, check

from . import device_models
from .device_models import DeviceModelRead

router = APIRouter(prefix="/device-models", tags=["device models"])


@router.get("", response_model=list[DeviceModelRead])
def list_device_models(
    caller: Caller,
    quantity: Annotated[
        str | None, Query(max_length=64, description="only models reporting it, e.g. co2")
    ] = None,
    vendor: Annotated[str | None, Query(max_length=64, description="e.g. milesight")] = None,
) -> list[DeviceModelRead]:
    """The supported device models, with what they measure and their vendors' facts."""
    check(caller, ("devices:read",))
    found = device_models.get_all(quantity=quantity, vendor=vendor)
    return [DeviceModelRead.model_validate(model) for model in found]


@router.get("/{model_id}", response_model=DeviceModelRead)
def get_device_model(
    caller: Caller, model_id: Annotated[str, Path(max_length=64)]
) -> DeviceModelRead:
    """One device model, e.g. `milesight-am103`."""
    check(caller, ("devices:read",))
    try:
        model = device_models.get(model_id.lower())
    except device_models.UnknownModel:
        known = ", ".join(device_models.catalogue())
        raise HTTPException(404, f"no device model {model_id!r}; known models: {known}") from None
    return DeviceModelRead.model_validate(model)
