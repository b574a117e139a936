"""Pydantic models of zones and bays, after FIWARE's OnStreetParking and ParkingSpot."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from core.hours import RegulatedHours
from devices.models import normalise_eui

from .tariffs import Tariff

ZoneCategory = Literal["short_term", "long_term", "residents", "delivery", "disabled", "mixed"]
BayKind = Literal["standard", "disabled", "delivery", "ev", "residents", "motorcycle"]
ZONE_CODE = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"
BAY_CODE = r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,39}$"
MAX_RING_POINTS = 2000


def _lon_lat(point: list[float]) -> list[float]:
    if len(point) != 2:
        raise ValueError("a position is [longitude, latitude]")
    lon, lat = point
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"position {point} is out of range ([longitude, latitude])")
    return point


class Polygon(BaseModel):
    """A GeoJSON Polygon (RFC 7946): rings of [longitude, latitude], each closed."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["Polygon"]
    coordinates: list[list[Annotated[list[float], AfterValidator(_lon_lat)]]]

    @field_validator("coordinates")
    @classmethod
    def _closed_rings(cls, rings: list[list[list[float]]]) -> list[list[list[float]]]:
        if not rings:
            raise ValueError("a polygon needs an outer ring")
        for ring in rings:
            if len(ring) < 4 or ring[0] != ring[-1]:
                raise ValueError("each ring has at least 4 positions, the last equal to the first")
            if len(ring) > MAX_RING_POINTS:
                raise ValueError(f"a ring has at most {MAX_RING_POINTS} positions")
        return rings


class ZoneFields(BaseModel):
    """What a parking manager sets on a tariff zone."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    category: ZoneCategory = "short_term"
    area: Polygon | None = None
    hours: RegulatedHours = Field(default_factory=RegulatedHours.typical)
    tariff: Tariff = Field(default_factory=Tariff.example)
    grace_minutes: int = Field(10, ge=0, le=240, description="minutes after arrival to pay")


class ZoneCreate(ZoneFields):
    """A new tariff zone; `code` is the one drivers read on the signs."""

    code: str = Field(pattern=ZONE_CODE)


class _Patch(BaseModel):
    """Changes: fields left out are kept; only `NULLABLE` fields may be set to null."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")
    NULLABLE: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        nulled = sorted(
            name for name in self.model_fields_set
            if getattr(self, name) is None and name not in self.NULLABLE
        )  # fmt: skip
        if nulled:
            raise ValueError(f"cannot be null: {', '.join(nulled)} (leave a field out to keep it)")
        return self


class ZoneUpdate(_Patch):
    """Changes to a zone (fields left out are kept; `area: null` removes the area)."""

    NULLABLE = frozenset({"area"})

    name: str | None = Field(None, min_length=1, max_length=200)
    category: ZoneCategory | None = None
    area: Polygon | None = None
    hours: RegulatedHours | None = None
    tariff: Tariff | None = None
    grace_minutes: int | None = Field(None, ge=0, le=240)
    active: bool | None = None


class ZoneRead(ZoneCreate):
    """A zone as the API returns it."""

    id: int
    active: bool
    bays: int = Field(description="number of bays in the zone")
    created_at: datetime
    updated_at: datetime


def _sensor(value: str | None) -> str | None:
    return None if value is None or value == "" else normalise_eui(value)


class BayFields(BaseModel):
    """Where a bay is and what it is for."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    zone: str = Field(pattern=ZONE_CODE, description="code of the bay's tariff zone")
    kind: BayKind = "standard"
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    sensor: Annotated[str | None, AfterValidator(_sensor)] = Field(
        None, description="DevEUI of the bay's occupancy sensor"
    )


class BayCreate(BayFields):
    """A new bay; `code` is painted on the ground or on the town's plan."""

    code: str = Field(pattern=BAY_CODE)


class BayUpdate(_Patch):
    """Changes to a bay (fields left out are kept; `sensor: null` unlinks the sensor)."""

    NULLABLE = frozenset({"sensor"})

    zone: str | None = Field(None, pattern=ZONE_CODE)
    kind: BayKind | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    sensor: Annotated[str | None, AfterValidator(_sensor)] = None


class BayRead(BayCreate):
    """A bay as the API returns it."""

    id: int
    created_at: datetime
    updated_at: datetime
